/// The version of both executables (`--version`) and the tag `scripts/image` gives the image.
public enum ProductVersion {
    public static let current = "0.3.0"
}

/// A printer column of a CRD (`additionalPrinterColumns`).
public struct PrinterColumn: Hashable, Sendable {
    public var name: String
    public var type: String
    public var jsonPath: String
    public var priority: Int
    public init(_ name: String, _ type: String, _ jsonPath: String, priority: Int = 0) {
        self.name = name
        self.type = type
        self.jsonPath = jsonPath
        self.priority = priority
    }
}

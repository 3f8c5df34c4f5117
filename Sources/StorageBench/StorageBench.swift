import AWSCore
import BackupStorage
import Foundation

/// The storage benchmark's driver (see `scripts/bench storage`): seeds, cleans, uploads and
/// downloads through BackupStorage against an S3 endpoint, with keys from AWS_ACCESS_KEY_ID and
/// AWS_SECRET_ACCESS_KEY. The script times each run against the AWS CLI doing the same work.
@main
struct StorageBench {
    static func main() async {
        var args = Array(CommandLine.arguments.dropFirst())
        guard !args.isEmpty else { usage() }
        let command = args.removeFirst()
        var options: [String: String] = [:]
        var positional: [String] = []
        while !args.isEmpty {
            let a = args.removeFirst()
            if a.hasPrefix("--"), !args.isEmpty { options[String(a.dropFirst(2))] = args.removeFirst() } else { positional.append(a) }
        }
        guard let endpoint = options["endpoint"].flatMap(URL.init(string:)), let bucket = options["bucket"] else { usage() }
        var client = S3Client(endpoint: S3Endpoint(base: endpoint, region: "us-east-1", pathStyle: true),
                              credentials: CredentialProvider.defaultChain())
        if let mib = options["part-size-mib"].flatMap(Int.init) { client.partSize = mib << 20 }
        if let n = options["parts"].flatMap(Int.init) { client.partConcurrency = n }
        let storage = S3Storage(client: client, bucket: bucket, prefix: options["prefix"] ?? "")
        do {
            switch command {
            case "seed":
                let count = Int(options["count"] ?? "") ?? 1000
                let width = Int(options["concurrency"] ?? "") ?? 64
                _ = try await Transfer.forEachPart(count, concurrency: width) { i in
                    try await storage.write(String(format: "data/%07d.sst", i), data: Data("object \(i)".utf8))
                }
                print("seeded: \(count) objects")
            case "clean":
                let report = try await Cleaner(storage: storage).clean()
                print("cleaned: \(report.deleted) objects in \(report.requests) delete requests, \(report.rounds) round(s)")
            case "upload":
                guard positional.count == 2 else { usage() }
                try await storage.upload(file: positional[0], to: positional[1])
            case "download":
                guard positional.count == 2 else { usage() }
                try await storage.download(positional[0], to: positional[1])
            default:
                usage()
            }
        } catch {
            FileHandle.standardError.write(Data("storage-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    static func usage() -> Never {
        FileHandle.standardError.write(Data("""
            usage: storage-bench seed|clean --endpoint URL --bucket B [--prefix P] [--count N] [--concurrency C]
                   storage-bench upload FILE KEY --endpoint URL --bucket B [--prefix P]
                   storage-bench download KEY FILE --endpoint URL --bucket B [--prefix P]

            """.utf8))
        exit(2)
    }
}

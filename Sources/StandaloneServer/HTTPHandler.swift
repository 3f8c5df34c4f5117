import Foundation
import HTTPTypes
import Hummingbird
import KubeModel
import NIOCore

/// Maps Kubernetes REST requests onto `APIServerCore`.
struct HTTPHandler: Sendable {
    let core: APIServerCore
    let token: String
    let presentation: Presentation
    let bookmarkInterval: Duration
    var metrics: (@Sendable () -> String)? = nil
    var webView: (@Sendable (inout Request) async -> Response)? = nil

    static let maxBody = 16 * 1024 * 1024

    struct Query {
        var values: [String: String] = [:]
        init(_ raw: String?) {
            for pair in (raw ?? "").split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = String(parts[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[0])
                let value = parts.count > 1 ? (String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "") : ""
                values[key] = value
            }
        }
        subscript(_ k: String) -> String? { values[k] }
        func flag(_ k: String) -> Bool { values[k].map { $0 == "true" || $0 == "1" || $0.isEmpty } ?? false }
    }

    func respond(_ request: Request) async -> Response {
        var request = request
        do {
            return try await route(&request)
        } catch let e as APIError {
            return error(e, request)
        } catch {
            return self.error(APIError(code: 500, reason: "InternalError", message: "Internal error occurred: \(error)"), request)
        }
    }

    func error(_ e: APIError, _ request: Request) -> Response {
        if e.plainText { return text(e.message + "\n", status: e.code) }
        return json(e.status, status: e.code, request: request)
    }

    func text(_ s: String, status: Int, contentType: String = "text/plain; charset=utf-8") -> Response {
        var h = HTTPFields()
        h[.contentType] = contentType
        return Response(status: .init(code: status), headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: s)))
    }

    func json(_ v: JSONValue, status: Int = 200, request: Request, warnings: [String] = [], extra: [(String, String)] = []) -> Response {
        let q = Query(request.uri.query)
        let ua = request.headers[.userAgent] ?? ""
        let pretty = q.flag("pretty") || ua.hasPrefix("curl") || ua.hasPrefix("Wget") || ua.hasPrefix("Mozilla")
        let accept = request.headers[.accept] ?? ""
        var h = HTTPFields()
        var body: String
        if accept.hasPrefix("application/yaml") {
            h[.contentType] = "application/yaml"
            body = KubeYAML.emit(v)
        } else {
            h[.contentType] = "application/json"
            body = v.serialized(pretty: pretty) + (pretty ? "\n" : "")
        }
        for w in warnings { h.append(HTTPField(name: HTTPField.Name("Warning")!, value: "299 - \"\(w.replacingOccurrences(of: "\"", with: "\\\""))\"")) }
        for (k, val) in extra { h.append(HTTPField(name: HTTPField.Name(k)!, value: val)) }
        return Response(status: .init(code: status), headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    func authorized(_ request: Request) -> Bool {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
        let presented = Array(header.dropFirst(7).utf8)
        let expected = Array(token.utf8)
        // Constant-time comparison so the token cannot be guessed byte by byte from response times.
        guard presented.count == expected.count else { return false }
        return zip(presented, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    func route(_ request: inout Request) async throws -> Response {
        let path = request.uri.path
        switch path {
        case "/version", "/version/":
            return json(["major": "1", "minor": "36", "gitVersion": "v1.36.0-tidb-backup-operator", "platform": "linux/amd64",
                         "goVersion": "n/a", "compiler": "swift"], request: request)
        case "/healthz", "/livez", "/readyz":
            return text("ok", status: 200)
        default: break
        }
        if let webView, path == "/ui" || path.hasPrefix("/ui/") { return await webView(&request) }
        guard authorized(request) else {
            return json(APIError(code: 401, reason: "Unauthorized", message: "Unauthorized").status, status: 401, request: request)
        }
        if path == "/metrics", let metrics {
            return text(metrics(), status: 200, contentType: "text/plain; version=0.0.4")
        }
        let segments = path.split(separator: "/").map(String.init)
        guard let root = segments.first else { throw APIError.pageNotFound() }
        switch root {
        case "api":
            if segments.count == 1 { return json(presentation.apiVersions(), request: request) }
            guard segments[1] == "v1" else { throw APIError.pageNotFound() }
            if segments.count == 2 { return json(presentation.resourceList(group: "", version: "v1")!, request: request) }
            return try await resource(group: "", version: "v1", rest: Array(segments[2...]), request: &request)
        case "apis":
            if segments.count == 1 { return json(presentation.apiGroupList(), request: request) }
            if segments.count == 2 {
                guard let g = presentation.apiGroup(segments[1]) else { throw APIError.pageNotFound() }
                return json(g, request: request)
            }
            if segments.count == 3 {
                guard let l = presentation.resourceList(group: segments[1], version: segments[2]) else { throw APIError.pageNotFound() }
                return json(l, request: request)
            }
            return try await resource(group: segments[1], version: segments[2], rest: Array(segments[3...]), request: &request)
        case "openapi":
            guard segments.count >= 2, segments[1] == "v3" else { throw APIError.pageNotFound() }
            if segments.count == 2 {
                return text(presentation.openAPIIndex().serialized(), status: 200)
            }
            let rest = segments[2...]
            let (group, version): (String, String)
            if rest.first == "api", rest.count == 2 { (group, version) = ("", rest.last!) }
            else if rest.first == "apis", rest.count == 3 { (group, version) = (rest[rest.startIndex + 1], rest.last!) }
            else { throw APIError.pageNotFound() }
            guard let doc = presentation.openAPIDocument(group: group, version: version) else { throw APIError.pageNotFound() }
            return json(doc, request: request, extra: [("Cache-Control", "public, immutable"), ("ETag", "\"\(presentation.hash(doc))\"")])
        default:
            throw APIError.pageNotFound()
        }
    }

    func readBody(_ request: inout Request) async throws -> JSONValue {
        let buffer = try await request.collectBody(upTo: Self.maxBody)
        let data = Data(buffer.readableBytesView)
        let contentType = (request.headers[.contentType] ?? "application/json").split(separator: ";").first.map(String.init) ?? ""
        switch contentType {
        case "application/vnd.kubernetes.protobuf":
            do { return try KubeProtobuf.decode(data) } catch {
                throw APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format: \(error)")
            }
        case "application/yaml", "application/apply-patch+yaml":
            guard let doc = try? KubeYAML.documents(String(decoding: data, as: UTF8.self)).first?.value else {
                throw APIError.badRequest("the body of the request could not be parsed as YAML")
            }
            return doc
        case "application/json", "application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json", "":
            do { return try JSONParser.parse(data).value } catch {
                throw APIError.badRequest("the body of the request could not be decoded: \(error)")
            }
        default:
            throw APIError(code: 415, reason: "UnsupportedMediaType",
                           message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf")
        }
    }

    func writeOptions(_ q: Query) throws -> APIServerCore.WriteOptions {
        var o = APIServerCore.WriteOptions()
        if let v = q["fieldValidation"], !v.isEmpty {
            guard let fv = APIServerCore.FieldValidation(rawValue: v) else {
                throw APIError.badRequest("fieldValidation: Unsupported value: \"\(v)\": supported values: \"Ignore\", \"Strict\", \"Warn\"")
            }
            o.fieldValidation = fv
        }
        o.dryRun = q["dryRun"] == "All"
        o.fieldManager = q["fieldManager"]
        return o
    }

    func resource(group: String, version: String, rest: [String], request: inout Request) async throws -> Response {
        var namespace: String?
        var tail = rest
        if tail.count >= 3, tail[0] == "namespaces" {
            namespace = tail[1]
            tail = Array(tail[2...])
        }
        guard let plural = tail.first, let type = core.registry.find(group: group, version: version, plural: plural) else {
            // `namespaces/<name>` itself, or an unknown resource.
            if rest.count >= 2, rest[0] == "namespaces", group.isEmpty, let nsType = core.registry.find(group: "", version: "v1", plural: "namespaces") {
                return try await object(nsType, namespace: nil, name: rest[1], subresource: rest.count > 2 ? rest[2] : nil, request: &request)
            }
            throw APIError.pageNotFound()
        }
        if type.namespaced == false && namespace != nil { throw APIError.pageNotFound() }
        if tail.count == 1 { return try await collection(type, namespace: namespace, request: &request) }
        return try await object(type, namespace: namespace, name: tail[1], subresource: tail.count > 2 ? tail[2] : nil, request: &request)
    }

    func wantsTable(_ request: Request) -> Bool {
        let accept = request.headers[.accept] ?? ""
        return accept.contains("as=Table")
    }

    func checkAccept(_ type: ResourceType, _ request: Request) throws {
        let accept = request.headers[.accept] ?? ""
        if accept.contains("application/vnd.kubernetes.protobuf") && !accept.contains("json") && !accept.contains("*/*") {
            throw APIError(code: 406, reason: "NotAcceptable", message: "only the following media types are accepted: application/json, application/yaml")
        }
    }

    func collection(_ type: ResourceType, namespace: String?, request: inout Request) async throws -> Response {
        let q = Query(request.uri.query)
        try checkAccept(type, request)
        switch request.method {
        case .get:
            let labels = try q["labelSelector"].flatMap { $0.isEmpty ? nil : $0 }.map { s -> LabelSelector in
                do { return try LabelSelector(parsing: s) } catch { throw APIError.badRequest("unable to parse requirement: \(error)") }
            }
            let fields = try q["fieldSelector"].flatMap { $0.isEmpty ? nil : $0 }.map { s -> FieldSelector in
                do { return try FieldSelector(parsing: s) } catch { throw APIError.badRequest("\(error)") }
            }
            if q.flag("watch") { return try watch(type, namespace: namespace, labels: labels, fields: fields, query: q, request: request) }
            let limit = q["resourceVersion"] == "0" ? nil : q["limit"].flatMap(Int.init)
            let result = try core.list(type, namespace: namespace, labelSelector: labels, fieldSelector: fields, limit: limit,
                                       continueToken: q["continue"])
            if wantsTable(request) {
                return json(presentation.table(type, result.items, resourceVersion: String(result.resourceVersion),
                                               continueToken: result.continueToken, includeObject: q["includeObject"] ?? "Metadata",
                                               now: Date()), request: request)
            }
            var meta: JSONObject = ["resourceVersion": .string(String(result.resourceVersion))]
            if let c = result.continueToken { meta["continue"] = .string(c) } else if type.isCustom { meta["continue"] = "" }
            if let r = result.remaining { meta["remainingItemCount"] = .int(Int64(r)) }
            return json(["apiVersion": .string(type.groupVersion), "kind": .string(type.kind + "List"), "metadata": .object(meta),
                         "items": .array(result.items)], request: request)
        case .post:
            let body = try await readBody(&request)
            let options = try writeOptions(q)
            let result = try await StoreThreads.run { [core] in try core.create(type, namespace: namespace, body: body, options: options) }
            return json(result.object, status: 201, request: request, warnings: result.warnings)
        case .delete:
            let labels = try q["labelSelector"].flatMap { $0.isEmpty ? nil : $0 }.map { try LabelSelector(parsing: $0) }
            let listed = try core.list(type, namespace: namespace, labelSelector: labels)
            let deleted = try await StoreThreads.run { [core] in
                listed.items.compactMap { item -> JSONValue? in
                    let name = item.value(at: ["metadata", "name"])?.stringValue ?? ""
                    return (try? core.delete(type, namespace: namespace, name: name))?.0
                }
            }
            return json(["apiVersion": .string(type.groupVersion), "kind": .string(type.kind + "List"),
                         "metadata": ["resourceVersion": .string(String(try core.store.currentResourceVersion))],
                         "items": .array(deleted)], request: request)
        default:
            throw APIError.methodNotAllowed()
        }
    }

    func object(_ type: ResourceType, namespace: String?, name: String, subresource: String?, request: inout Request) async throws -> Response {
        let q = Query(request.uri.query)
        try checkAccept(type, request)
        if let subresource {
            if subresource == "log" && type.kind == "Pod" { return try podLog(namespace: namespace, name: name, request: request) }
            guard subresource == "status", type.hasStatusSubresource else { throw APIError.notFound(type, name) }
        }
        switch request.method {
        case .get:
            let object = try core.get(type, namespace: namespace, name: name)
            if wantsTable(request) {
                return json(presentation.table(type, [object], resourceVersion: object.value(at: ["metadata", "resourceVersion"])?.stringValue ?? "",
                                               includeObject: q["includeObject"] ?? "Metadata", now: Date()), request: request)
            }
            return json(object, request: request)
        case .put:
            let body = try await readBody(&request)
            let options = try writeOptions(q)
            let result = try await StoreThreads.run { [core] in
                try core.update(type, namespace: namespace, name: name, body: body, subresource: subresource,
                                requireResourceVersion: type.isCustom, options: options)
            }
            return json(result.object, request: request, warnings: result.warnings)
        case .patch:
            let contentType = (request.headers[.contentType] ?? "").split(separator: ";").first.map(String.init) ?? ""
            guard let patchType = APIServerCore.PatchType(rawValue: contentType) else {
                throw APIError(code: 415, reason: "UnsupportedMediaType",
                               message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
            }
            let body = try await readBody(&request)
            let options = try writeOptions(q)
            let result = try await StoreThreads.run { [core] in
                try core.patch(type, namespace: namespace, name: name, patchType: patchType, patch: body, subresource: subresource, options: options)
            }
            return json(result.object, status: result.created ? 201 : 200, request: request, warnings: result.warnings)
        case .post:
            // Custom resources accept a POST to a named URL and create the object named in the body.
            guard type.isCustom else { throw APIError.methodNotAllowed() }
            let body = try await readBody(&request)
            let options = try writeOptions(q)
            let result = try await StoreThreads.run { [core] in try core.create(type, namespace: namespace, body: body, options: options) }
            return json(result.object, status: 201, request: request, warnings: result.warnings)
        case .delete:
            var options = APIServerCore.DeleteOptions()
            let buffer = try await request.collectBody(upTo: Self.maxBody)
            if buffer.readableBytes > 0, let body = try? JSONParser.parse(Data(buffer.readableBytesView)).value {
                options.propagationPolicy = body["propagationPolicy"]?.stringValue
                options.preconditionUID = body.value(at: ["preconditions", "uid"])?.stringValue
                options.preconditionResourceVersion = body.value(at: ["preconditions", "resourceVersion"])?.stringValue
                options.dryRun = body["dryRun"]?.arrayValue?.contains("All") ?? false
            }
            if let p = q["propagationPolicy"] { options.propagationPolicy = p }
            if q["dryRun"] == "All" { options.dryRun = true }
            let (object, gone) = try await StoreThreads.run { [core, options] in try core.delete(type, namespace: namespace, name: name, options: options) }
            if gone {
                return json(["kind": "Status", "apiVersion": "v1", "metadata": .emptyObject, "status": "Success",
                             "details": ["name": .string(name), "group": .string(type.group), "kind": .string(type.plural),
                                         "uid": object.value(at: ["metadata", "uid"]) ?? ""]], request: request)
            }
            return json(object, request: request)
        default:
            throw APIError.methodNotAllowed()
        }
    }

    func podLog(namespace: String?, name: String, request: Request) throws -> Response {
        guard let podType = core.registry.find(group: "", version: "v1", plural: "pods") else { throw APIError.pageNotFound() }
        let pod = try core.get(podType, namespace: namespace, name: name)
        guard let path = pod.value(at: ["metadata", "annotations", PodLogs.annotation])?.stringValue,
              let data = FileManager.default.contents(atPath: path)
        else {
            // Like a pod without a node: no log yet.
            return Response(status: .noContent)
        }
        return text(String(decoding: data, as: UTF8.self), status: 200)
    }

    // MARK: Watch

    func watch(_ type: ResourceType, namespace: String?, labels: LabelSelector?, fields: FieldSelector?, query q: Query,
               request: Request) throws -> Response {
        let rvText = q["resourceVersion"] ?? ""
        var from: Int64?
        if !rvText.isEmpty && rvText != "0" {
            guard let v = Int64(rvText) else {
                throw APIError(code: 500, reason: "InternalError", message: "Internal error occurred: strconv.ParseUint: parsing \"\(rvText)\": invalid syntax")
            }
            from = v
        }
        let table = wantsTable(request)
        let includeObject = q["includeObject"] ?? "Metadata"
        let bookmarks = q.flag("allowWatchBookmarks")
        let timeout = q["timeoutSeconds"].flatMap(Int.init).map { Duration.seconds($0) } ?? .seconds(1800)
        let core = self.core
        let presentation = self.presentation
        let bookmarkInterval = self.bookmarkInterval
        let session: APIServerCore.WatchSession
        do {
            session = try core.openWatch(type, namespace: namespace, labels: labels, fields: fields, from: from)
        } catch let error as APIError where error.code == 410 {
            let line = JSONValue.object(["type": "ERROR", "object": error.status]).serialized() + "\n"
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: line)))
        }
        let (stream, cancel, matches) = (session.live, session.cancel, session.matches)
        let lastRV = session.startRV
        let initial = session.initial.map { ($0.kind.rawValue, $0.object, $0.resourceVersion) }
        let startRV = lastRV
        let initialEvents = initial
        let body = ResponseBody { writer in
            var firstTable = true
            var lastSent = startRV
            func frame(_ type: String, _ object: JSONValue) -> ByteBuffer {
                var payload = object
                if table, type != "BOOKMARK" {
                    payload = presentation.table(typeInfo(), [object], resourceVersion: object.value(at: ["metadata", "resourceVersion"])?.stringValue ?? "",
                                                 includeObject: includeObject, withColumns: firstTable, now: Date())
                    firstTable = false
                }
                return ByteBuffer(string: JSONValue.object(["type": .string(type), "object": payload]).serialized() + "\n")
            }
            func typeInfo() -> ResourceType { type }
            for (kind, object, rv) in initialEvents {
                try await writer.write(frame(kind, object))
                lastSent = max(lastSent, rv)
            }
            enum Signal: Sendable { case event(StoredEvent), tick, timeout }
            let (signals, continuation) = AsyncStream<Signal>.makeStream()
            let forward = Task {
                for await e in stream { continuation.yield(.event(e)) }
                continuation.finish()
            }
            let ticker = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: bookmarkInterval)
                    continuation.yield(.tick)
                }
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                continuation.yield(.timeout)
            }
            defer {
                forward.cancel()
                ticker.cancel()
                timer.cancel()
            }
            loop: for await signal in signals {
                switch signal {
                case .event(let event):
                    guard event.resourceVersion > lastSent, matches(event.object) else { continue }
                    try await writer.write(frame(event.kind.rawValue, event.object))
                    lastSent = event.resourceVersion
                case .tick:
                    guard bookmarks else { continue }
                    let bookmark: JSONValue = ["apiVersion": .string(type.groupVersion), "kind": .string(type.kind),
                                               "metadata": ["resourceVersion": .string(String(lastSent))]]
                    try await writer.write(frame("BOOKMARK", bookmark))
                case .timeout:
                    // A client that allows bookmarks learns where to resume, as the API server tells it
                    // shortly before timeoutSeconds runs out.
                    if bookmarks {
                        let bookmark: JSONValue = ["apiVersion": .string(type.groupVersion), "kind": .string(type.kind),
                                                   "metadata": ["resourceVersion": .string(String(lastSent))]]
                        try await writer.write(frame("BOOKMARK", bookmark))
                    }
                    break loop
                }
            }
            cancel()
            try await writer.finish(nil)
        }
        var h = HTTPFields()
        h[.contentType] = "application/json"
        h[.cacheControl] = "no-cache, private"
        return Response(status: .ok, headers: h, body: body)
    }
}

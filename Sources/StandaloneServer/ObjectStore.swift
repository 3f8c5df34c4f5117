import Foundation
import GRDB
import Synchronization
import KubeModel

/// One stored change, as watchers see it.
public struct StoredEvent: Sendable {
    public enum Kind: String, Sendable { case added = "ADDED", modified = "MODIFIED", deleted = "DELETED" }
    public var kind: Kind
    public var resourceKey: String
    public var namespace: String
    public var name: String
    public var resourceVersion: Int64
    public var object: JSONValue
}

/// Objects in SQLite: one row per object and a bounded history of changes for watches.
///
/// The database runs in WAL mode with `synchronous=NORMAL`: a committed transaction survives the
/// process being killed at any moment (the WAL is in the operating system's cache), which is the
/// guarantee the server gives for every acknowledged write. The resourceVersion is one counter for the
/// whole store, persisted in the same transaction as each change, so it never goes backwards.
public final class ObjectStore: Sendable {
    let pool: DatabasePool
    let historyLimit: Int
    /// The most recently written objects, parsed, as committed. Only the writer fills it (after each
    /// commit, in commit order), so it never holds anything older than the database; readers use it
    /// instead of parsing the stored JSON again, which is what an object just written is read for
    /// next (a controller reacting to its own change, the job runner to a new Job).
    let recent: Mutex<RecentObjects>
    let groupCommit = GroupCommit()

    /// Resources whose every object stays parsed in memory (few objects, read on every request):
    /// namespaces, which each namespaced create and update checks, and TidbClusters, which every
    /// Backup and Restore reconcile reads.
    let pinnedResources: Set<String> = ["/namespaces", "pingcap.com/tidbclusters"]

    public init(path: String, historyLimit: Int = 20_000, recentCapacity: Int = 2048) throws {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // 1 MiB of page cache per connection instead of SQLite's 2: objects are read by key or by a
            // range of one index, and the OS keeps the file's pages anyway.
            try db.execute(sql: "PRAGMA cache_size = -1024")
            // Checkpoints run beside the writes (`checkpoints`); a committing write checkpoints only if
            // the WAL has grown past 40 MiB anyway (SQLite's default, 4 MiB, put a checkpoint and its
            // fsync into a write now and then: a burst of writes waited behind it).
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 10000")
        }
        // Readers beyond the two cores' worth only add page caches.
        config.maximumReaderCount = 3
        pool = try DatabasePool(path: path, configuration: config)
        self.historyLimit = historyLimit
        recent = Mutex(RecentObjects(capacity: recentCapacity))
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE objects (
                  resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
                  uid TEXT NOT NULL, rv INTEGER NOT NULL, owners TEXT NOT NULL DEFAULT '', data BLOB NOT NULL,
                  PRIMARY KEY (resource, namespace, name));
                CREATE INDEX objects_uid ON objects(uid);
                CREATE TABLE history (
                  rv INTEGER PRIMARY KEY, resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
                  type TEXT NOT NULL, data BLOB NOT NULL);
                CREATE TABLE counter (id INTEGER PRIMARY KEY CHECK (id = 1), rv INTEGER NOT NULL);
                INSERT INTO counter (id, rv) VALUES (1, 1);
                """)
        }
        // The owner index: one row per (owner uid, dependent), so the garbage collector finds an
        // object's dependents without scanning every object, and a namespace's objects are counted
        // through an index.
        migrator.registerMigration("v2-owner-index") { db in
            try db.execute(sql: """
                CREATE TABLE owner_refs (owner TEXT NOT NULL, resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
                  PRIMARY KEY (owner, resource, namespace, name)) WITHOUT ROWID;
                CREATE INDEX owner_refs_dependent ON owner_refs(resource, namespace, name);
                CREATE INDEX objects_namespace ON objects(namespace);
                """)
            let rows = try Row.fetchAll(db, sql: "SELECT resource, namespace, name, owners FROM objects WHERE owners != ''")
            for row in rows {
                for owner in (row["owners"] as String).split(separator: " ") {
                    try db.execute(sql: "INSERT OR IGNORE INTO owner_refs (owner, resource, namespace, name) VALUES (?, ?, ?, ?)",
                                   arguments: [String(owner), row["resource"] as String, row["namespace"] as String, row["name"] as String])
                }
            }
        }
        try migrator.migrate(pool)
        checkpointer = try DatabaseQueue(path: path)
        let interval = checkpointInterval
        let task = Task.detached(priority: .background) { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self else { return }
                try? await self.checkpoint()
            }
        }
        checkpoints.withLock { $0 = task }
    }

    deinit { checkpoints.withLock { $0?.cancel() } }

    /// A connection of its own for checkpoints: copying the WAL into the database (and its fsync)
    /// happens beside the writes, not inside one.
    private let checkpointer: DatabaseQueue
    private let checkpoints = Mutex<Task<Void, Never>?>(nil)
    let checkpointInterval: Duration = .milliseconds(500)

    /// Copies what the WAL holds into the database file without waiting for readers or the writer
    /// (SQLite's passive checkpoint), on a store thread.
    func checkpoint() async throws {
        try await StoreThreads.run { [checkpointer] in
            try checkpointer.writeWithoutTransaction { try $0.checkpoint(.passive) }
        }
    }

    static func ownerUIDs(_ object: JSONValue?) -> [String] {
        (object?.value(at: ["metadata", "ownerReferences"])?.arrayValue ?? []).compactMap { $0["uid"]?.stringValue }
    }

    public var currentResourceVersion: Int64 {
        get throws { try pool.read { db in try Int64.fetchOne(db, sql: "SELECT rv FROM counter WHERE id = 1") ?? 1 } }
    }

    /// The oldest resourceVersion a watch can resume from.
    public var oldestWatchableResourceVersion: Int64 {
        get throws {
            try pool.read { db in
                let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(rv) FROM history")
                let current = try Int64.fetchOne(db, sql: "SELECT rv FROM counter WHERE id = 1") ?? 1
                return (oldest ?? current + 1) - 1
            }
        }
    }

    public func get(_ resourceKey: String, namespace: String, name: String) throws -> JSONValue? {
        let key = RecentObjects.key(resourceKey, namespace, name)
        if let hit = recent.withLock({ $0.get(key) }) { return hit }
        let generation = recent.withLock { $0.pinnedGeneration }
        let object = try pool.read { db -> JSONValue? in
            guard let data = try Data.fetchOne(db.cachedStatement(sql: "SELECT data FROM objects WHERE resource = ? AND namespace = ? AND name = ?"),
                                               arguments: [resourceKey, namespace, name]) else { return nil }
            return try JSONParser.parse(data).value
        }
        if let object, pinnedResources.contains(resourceKey) {
            // Only if no commit of this key came in between: the cache never goes backwards.
            recent.withLock { if $0.pinnedGeneration == generation { $0.putIfAbsent(key, object, pinned: true) } }
        }
        return object
    }

    /// Objects of a resource, optionally in one namespace, ordered by namespace and name, starting after
    /// `after` (the continue position).
    /// With `limit`, at most that many rows are read (the page size pushed down to SQLite) and
    /// `remaining` counts the rows after them.
    /// `containing`: byte strings every returned document holds (SQLite skips the others without
    /// handing them over to be parsed); a caller filtering by labels still checks what it gets.
    public func list(_ resourceKey: String, namespace: String?, after: (String, String)? = nil,
                     limit: Int? = nil, containing: [[UInt8]] = []) throws -> (items: [JSONValue], resourceVersion: Int64, remaining: Int) {
        try pool.read { db in
            var filter = "WHERE resource = ?"
            var args: [any DatabaseValueConvertible] = [resourceKey]
            if let namespace { filter += " AND namespace = ?"; args.append(namespace) }
            for bytes in containing { filter += " AND instr(data, ?) > 0"; args.append(Data(bytes)) }
            if let after { filter += " AND (namespace, name) > (?, ?)"; args.append(after.0); args.append(after.1) }
            var sql = "SELECT data FROM objects \(filter) ORDER BY namespace, name"
            if let limit { sql += " LIMIT \(limit)" }
            let rows = try Data.fetchAll(db, sql: sql, arguments: StatementArguments(args))
            var remaining = 0
            if let limit, rows.count == limit {
                let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM objects \(filter)", arguments: StatementArguments(args)) ?? 0
                remaining = total - rows.count
            }
            let rv = try Int64.fetchOne(db, sql: "SELECT rv FROM counter WHERE id = 1") ?? 1
            return (try rows.map { try JSONParser.parse($0).value }, rv, remaining)
        }
    }

    /// Objects of one namespace whose names start with `prefix`, through the (namespace, name) index.
    public func list(_ resourceKey: String, namespace: String, namePrefix prefix: String) throws -> [JSONValue] {
        try pool.read { db in
            try Data.fetchAll(db, sql: """
                SELECT data FROM objects WHERE resource = ? AND namespace = ? AND name >= ? AND name < ? ORDER BY name
                """, arguments: [resourceKey, namespace, prefix, prefix + "\u{7F}"]).map { try JSONParser.parse($0).value }
        }
    }

    /// Objects whose ownerReferences name `uid`, through the owner index.
    public func dependents(ofUID uid: String) throws -> [(resourceKey: String, object: JSONValue)] {
        try pool.read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT o.resource, o.data FROM owner_refs r JOIN objects o
                  ON o.resource = r.resource AND o.namespace = r.namespace AND o.name = r.name WHERE r.owner = ?
                """), arguments: [uid]).map {
                ($0["resource"] as String, try JSONParser.parse($0["data"] as Data).value)
            }
        }
    }

    /// The object with this uid, if it exists.
    public func object(uid: String) throws -> (resourceKey: String, object: JSONValue)? {
        try pool.read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT resource, data FROM objects WHERE uid = ?"), arguments: [uid]).map {
                ($0["resource"] as String, try JSONParser.parse($0["data"] as Data).value)
            }
        }
    }

    /// How many objects of these resources a namespace holds (through the namespace index).
    public func count(namespace: String, resources: [String]) throws -> Int {
        guard !resources.isEmpty else { return 0 }
        return try pool.read { db in
            let marks = resources.map { _ in "?" }.joined(separator: ", ")
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM objects WHERE namespace = ? AND resource IN (\(marks))",
                                    arguments: StatementArguments([namespace] + resources)) ?? 0
        }
    }

    public func exists(uid: String) throws -> Bool {
        try pool.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM objects WHERE uid = ?)", arguments: [uid]) ?? false }
    }

    private let listeners = Mutex<[@Sendable (StoredEvent) -> Void]>([])

    /// Calls `listener` with every committed change, in resourceVersion order: it runs on the writer's
    /// queue right after the commit, before the next write can start. (Publishing after `write`
    /// returns would let two concurrent writers publish out of order, and a watcher that skips
    /// versions it has passed would lose the earlier one.)
    public func onCommit(_ listener: @escaping @Sendable (StoredEvent) -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    /// Applies one change atomically. `change` receives the stored object (or nil) and returns the new
    /// state (nil deletes); the store assigns the next resourceVersion and records the event.
    ///
    /// Writes that arrive while another is committing share the next transaction (group commit): one
    /// WAL append for the batch instead of one per write. Each runs in a savepoint of its own, so a
    /// failing one changes nothing and fails alone, and each caller returns only after the batch that
    /// holds its write has committed, so an acknowledged write is as durable as before.
    @discardableResult
    public func write(_ resourceKey: String, namespace: String, name: String,
                      _ change: (JSONValue?) throws -> JSONValue?) throws -> StoredEvent? {
        try withoutActuallyEscaping(change) { change in
            // The closure is run by whichever caller leads the batch, while this caller waits below for
            // its result; it never outlives this call.
            let request = GroupCommit.Request(UncheckedBox { db, overlay in
                try self.apply(db, overlay: &overlay, resourceKey, namespace, name, change)
            })
            return try groupCommit.submit(request, pool: pool)
        }
    }

    func apply(_ db: Database, overlay: inout [String: JSONValue?], _ resourceKey: String, _ namespace: String, _ name: String,
               _ change: (JSONValue?) throws -> JSONValue?) throws -> StoredEvent? {
            // Statements are compiled once per connection (GRDB's statement cache): the write path
            // is the store's hot path.
            let key = RecentObjects.key(resourceKey, namespace, name)
            let existing: JSONValue?
            if let written = overlay[key] {
                // Written earlier in this batch: newer than the cache, which fills at commit.
                existing = written
            } else if let hit = recent.withLock({ $0.get(key) }) {
                existing = hit
            } else {
                existing = try Data.fetchOne(db.cachedStatement(sql: "SELECT data FROM objects WHERE resource = ? AND namespace = ? AND name = ?"),
                                             arguments: [resourceKey, namespace, name]).map { try JSONParser.parse($0).value }
            }
            let next = try change(existing)
            if next == nil && existing == nil { return nil }
            // Handing back the stored object unchanged (a refused create or update) is not a write: no new
            // resourceVersion, no event.
            if let next, let existing, next == existing { return nil }
            let rv = (try Int64.fetchOne(db.cachedStatement(sql: "SELECT rv FROM counter WHERE id = 1")) ?? 1) + 1
            try db.cachedStatement(sql: "UPDATE counter SET rv = ? WHERE id = 1").execute(arguments: [rv])
            let kind: StoredEvent.Kind
            var stored: JSONValue
            var storedData: Data
            if var object = next {
                object["metadata"]?["resourceVersion"] = .string(String(rv))
                stored = object
                let uid = object.value(at: ["metadata", "uid"])?.stringValue ?? ""
                let owners = (object.value(at: ["metadata", "ownerReferences"])?.arrayValue ?? [])
                    .compactMap { $0["uid"]?.stringValue }
                let ownerText = owners.isEmpty ? "" : " " + owners.joined(separator: " ") + " "
                storedData = object.data()
                try db.cachedStatement(sql: """
                    INSERT INTO objects (resource, namespace, name, uid, rv, owners, data) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(resource, namespace, name) DO UPDATE SET uid = excluded.uid, rv = excluded.rv,
                      owners = excluded.owners, data = excluded.data
                    """).execute(arguments: [resourceKey, namespace, name, uid, rv, ownerText, storedData])
                kind = existing == nil ? .added : .modified
                let before = Self.ownerUIDs(existing)
                if before != owners {
                    try db.cachedStatement(sql: "DELETE FROM owner_refs WHERE resource = ? AND namespace = ? AND name = ?")
                        .execute(arguments: [resourceKey, namespace, name])
                    for owner in Set(owners) {
                        try db.cachedStatement(sql: "INSERT OR IGNORE INTO owner_refs (owner, resource, namespace, name) VALUES (?, ?, ?, ?)")
                            .execute(arguments: [owner, resourceKey, namespace, name])
                    }
                }
            } else {
                // The DELETED event carries the last stored state with the deletion's resourceVersion.
                stored = existing!
                stored["metadata"]?["resourceVersion"] = .string(String(rv))
                storedData = stored.data()
                try db.cachedStatement(sql: "DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?")
                    .execute(arguments: [resourceKey, namespace, name])
                if !Self.ownerUIDs(existing).isEmpty {
                    try db.cachedStatement(sql: "DELETE FROM owner_refs WHERE resource = ? AND namespace = ? AND name = ?")
                        .execute(arguments: [resourceKey, namespace, name])
                }
                kind = .deleted
            }
            try db.cachedStatement(sql: "INSERT INTO history (rv, resource, namespace, name, type, data) VALUES (?, ?, ?, ?, ?, ?)")
                .execute(arguments: [rv, resourceKey, namespace, name, kind.rawValue, storedData])
            if rv % Int64(max(1, min(1000, historyLimit / 4))) == 0 {
                try db.execute(sql: "DELETE FROM history WHERE rv <= ?", arguments: [rv - Int64(historyLimit)])
            }
            let event = StoredEvent(kind: kind, resourceKey: resourceKey, namespace: namespace, name: name, resourceVersion: rv, object: stored)
            overlay[key] = kind == .deleted ? .some(nil) : .some(event.object)
            let listeners = self.listeners.withLock { $0 }
            db.afterNextTransaction(onCommit: { _ in
                self.recent.withLock { cache in
                    if kind == .deleted { cache.remove(key, pinned: self.pinnedResources.contains(resourceKey)) } else { cache.put(key, event.object, pinned: self.pinnedResources.contains(resourceKey)) }
                }
                for l in listeners { l(event) }
            }, onRollback: { _ in })
            return event
    }

    /// Recorded changes of a resource after `resourceVersion`, oldest first.
    public func history(_ resourceKey: String, after resourceVersion: Int64) throws -> [StoredEvent] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT rv, namespace, name, type, data FROM history WHERE resource = ? AND rv > ? ORDER BY rv",
                             arguments: [resourceKey, resourceVersion]).map { row in
                StoredEvent(kind: StoredEvent.Kind(rawValue: row["type"])!, resourceKey: resourceKey, namespace: row["namespace"],
                            name: row["name"], resourceVersion: row["rv"], object: try JSONParser.parse(row["data"] as Data).value)
            }
        }
    }
}

/// A bounded map of parsed objects; the oldest writes go first when it is full.
struct RecentObjects: Sendable {
    let capacity: Int
    var entries: [String: (object: JSONValue, tick: UInt64)] = [:]
    var tick: UInt64 = 0

    init(capacity: Int) { self.capacity = max(0, capacity) }

    static func key(_ resource: String, _ namespace: String, _ name: String) -> String { resource + "\u{0}" + namespace + "\u{0}" + name }

    /// Objects never evicted (see `ObjectStore.pinnedResources`).
    var pinned: [String: JSONValue] = [:]
    /// Bumped by every commit to a pinned object, so that a reader does not cache what it read
    /// before a commit (a deletion above all) after that commit.
    var pinnedGeneration: UInt64 = 0

    func get(_ key: String) -> JSONValue? { pinned[key] ?? entries[key]?.object }

    mutating func putIfAbsent(_ key: String, _ object: JSONValue, pinned isPinned: Bool) {
        if get(key) == nil { put(key, object, pinned: isPinned) }
    }

    mutating func put(_ key: String, _ object: JSONValue, pinned isPinned: Bool = false) {
        if isPinned {
            pinned[key] = object
            pinnedGeneration += 1
            return
        }
        guard capacity > 0 else { return }
        tick += 1
        entries[key] = (object, tick)
        if entries.count > capacity {
            // Drop the oldest quarter at once, so eviction costs little per write.
            let cutoff = entries.values.map(\.tick).sorted()[entries.count / 4]
            entries = entries.filter { $0.value.tick > cutoff }
        }
    }

    mutating func remove(_ key: String, pinned isPinned: Bool = false) {
        entries[key] = nil
        if isPinned {
            pinned[key] = nil
            pinnedGeneration += 1
        }
    }
}

/// Batches concurrent writes into one transaction: the first caller to find no batch running leads,
/// takes every request queued so far, runs them in one transaction (a savepoint each) and hands each
/// its result; callers that arrive meanwhile wait and are taken by the next batch.
final class GroupCommit: @unchecked Sendable {
    typealias Work = (Database, inout [String: JSONValue?]) throws -> StoredEvent?

    final class Request: @unchecked Sendable {
        /// Dropped by the leader once run, before the result is handed back: the submitter's closure
        /// must not outlive its call (`withoutActuallyEscaping` checks it).
        var work: UncheckedBox<Work>?
        var result: Result<StoredEvent?, any Error>?
        init(_ work: UncheckedBox<Work>) { self.work = work }
    }

    private let condition = NSCondition()
    private var pending: [Request] = []
    private var leading = false
    /// How many writes one transaction takes at most (a bound on the time a batch holds the writer).
    let maxBatch = 256

    func submit(_ request: Request, pool: DatabasePool) throws -> StoredEvent? {
        condition.lock()
        pending.append(request)
        while request.result == nil && leading { condition.wait() }
        if let result = request.result {
            condition.unlock()
            return try result.get()
        }
        // Lead: this request is still pending, so it is in the batch taken now.
        leading = true
        let batch = Array(pending.prefix(maxBatch))
        pending.removeFirst(batch.count)
        condition.unlock()
        var results: [Result<StoredEvent?, any Error>] = []
        results.reserveCapacity(batch.count)
        do {
            try pool.write { db in
                results.removeAll(keepingCapacity: true)
                var overlay: [String: JSONValue?] = [:]
                for r in batch {
                    var outcome: Result<StoredEvent?, any Error> = .success(nil)
                    if let work = r.work {
                        do {
                            var staged = overlay
                            try db.inSavepoint {
                                outcome = .success(try work.value(db, &staged))
                                return .commit
                            }
                            overlay = staged
                        } catch {
                            outcome = .failure(error)
                        }
                    }
                    results.append(outcome)
                }
            }
        } catch {
            // The transaction itself failed (e.g. the commit): nothing of the batch was written.
            results = batch.map { _ in .failure(error) }
        }
        for r in batch { r.work = nil }
        condition.lock()
        for (r, result) in zip(batch, results) { r.result = result }
        leading = false
        condition.broadcast()
        condition.unlock()
        return try request.result!.get()
    }
}

/// Carries a value across threads where the caller guarantees the access is ordered (here: the
/// submitting thread waits while the leader runs its closure).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

import Foundation
import Testing

@testable import KubeModel

@Suite("JSON values and parser")
struct JSONTests {
    @Test("parsing keeps member order, integers and floats, and serialises back byte for byte")
    func roundTrip() throws {
        let text = #"{"z":1,"a":[true,null,1.5,-2],"m":{"k":"v\n\"q\" é \u00e9"},"e":{},"l":[]}"#
        let value = try JSONParser.parse(text)
        #expect(value["z"] == .int(1))
        #expect(value["a"] == [true, .null, 1.5, -2])
        #expect(value.objectValue?.keys == ["z", "a", "m", "e", "l"])
        #expect(value.serialized() == #"{"z":1,"a":[true,null,1.5,-2],"m":{"k":"v\n\"q\" é é"},"e":{},"l":[]}"#)
        #expect(try JSONParser.parse(value.serialized(pretty: true)) == value)
    }

    @Test("duplicate keys are reported with their path; the last value wins")
    func duplicates() throws {
        let r = try JSONParser.parse(Data(#"{"spec":{"backupType":"full","backupType":"db"}}"#.utf8))
        #expect(r.duplicateKeys == ["spec.backupType"])
        #expect(r.value.value(at: ["spec", "backupType"]) == "db")
    }

    @Test("malformed documents fail with a line and column", arguments: [
        #"{"a":1"#, #"{"a" 1}"#, "[1,]", "01", #"{"a":tru}"#, "\"\u{01}\"", "1 2",
    ])
    func malformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test("the error position points at the problem")
    func position() {
        do {
            _ = try JSONParser.parse("{\n  \"a\": [1,\n  }")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 3)
        }
    }
}

@Suite("Times and durations")
struct TimeTests {
    @Test("RFC 3339 times parse to whole seconds and print in UTC", arguments: [
        ("2024-03-05T07:08:09Z", "2024-03-05T07:08:09Z"),
        ("2024-03-05T15:08:09+08:00", "2024-03-05T07:08:09Z"),
        ("2024-03-05T07:08:09.999Z", "2024-03-05T07:08:09Z"),
        ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"),
        ("2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"),
    ])
    func rfc3339(_ input: String, _ output: String) throws {
        #expect(try #require(Time(rfc3339: input)).description == output)
    }

    @Test("invalid times are rejected", arguments: ["2024-02-30T00:00:00Z", "2024-03-05 07:08:09", "2024-03-05T07:08:09", "x"])
    func invalid(_ input: String) { #expect(Time(rfc3339: input) == nil) }

    @Test("civil dates convert exactly, with weekdays")
    func civil() {
        #expect(Time(rfc3339: "2023-11-14T22:13:20Z")!.unixSeconds == 1_700_000_000)
        #expect(CivilTime(year: 2024, month: 3, day: 10).weekday == 0)
        #expect(CivilTime(year: 1970, month: 1, day: 1).weekday == 4)
        #expect(CivilTime(year: 2024, month: 13, day: 1).unixSeconds == CivilTime(year: 2025, month: 1, day: 1).unixSeconds)
        #expect(CivilTime(year: 2024, month: 3, day: 0).unixSeconds == CivilTime(year: 2024, month: 2, day: 29).unixSeconds)
    }

    @Test("Go durations parse", arguments: [
        ("72h", Int64(72 * 3600)), ("300s", 300), ("30m", 1800), ("1h30m", 5400), ("1.5h", 5400), ("0", 0), ("-2m", -120),
    ])
    func durations(_ text: String, _ seconds: Int64) throws {
        #expect(try GoDuration(parsing: text).nanoseconds == seconds * 1_000_000_000)
    }

    @Test("bad durations fail", arguments: ["", "3", "h", "3x", "1..5s", "3 h"])
    func badDurations(_ text: String) {
        #expect(throws: GoDuration.ParseError.self) { try GoDuration(parsing: text) }
    }

    @Test("durations print as Go prints them", arguments: [
        (Int64(45), "45s"), (3600, "1h0m0s"), (3723, "1h2m3s"), (86400, "24h0m0s"), (0, "0s"), (240, "4m0s"),
    ])
    func printing(_ seconds: Int64, _ text: String) {
        #expect(GoDuration(seconds: seconds).description == text)
    }
}

@Suite("YAML")
struct YAMLTests {
    @Test("multi-document streams with their start lines and YAML 1.2 scalars")
    func documents() throws {
        let docs = try KubeYAML.documents("""
            # comment
            ---
            a: 4000
            b: "4000"
            c: true
            d: null
            e: 1.5
            f: [x, y]
            ---
            ---
            g: {h: i}
            """)
        #expect(docs.count == 2)
        #expect(docs[0].value["a"] == .int(4000))
        #expect(docs[0].value["b"] == "4000")
        #expect(docs[0].value["c"] == true)
        #expect(docs[0].value["d"] == .null)
        #expect(docs[0].value["e"] == 1.5)
        #expect(docs[0].value["f"] == ["x", "y"])
        #expect(docs[1].value.value(at: ["g", "h"]) == "i")
        #expect(docs[0].line == 3)
    }

    @Test("a syntax error names the line")
    func syntaxError() {
        do {
            _ = try KubeYAML.documents("a: b\nc: [d\ne: f\n")
            Issue.record("expected an error")
        } catch {
            #expect(error.line != nil)
        }
    }

    @Test("emitted YAML reads back as the same value, including strings that look like other types")
    func emitRoundTrip() throws {
        let value: JSONValue = [
            "s": ["true", "4000", "", "- x", "a: b", "null", "0x10", "1.5", "plain", "x #y", "multi\nline"],
            "n": ["a": 1, "b": 2.5, "c": false, "d": .null, "e": [:], "f": []],
            "list": [["k": "v", "k2": ["nested"]], [1, 2]],
        ]
        let text = KubeYAML.emit(value)
        #expect(try KubeYAML.documents(text).first?.value == value)
    }
}

struct Sample: Codable, Hashable, SchemaAnnotated {
    var name: String
    var count: Int32?
    var tags: [String]?
    var labels: [String: String]?
    @EmitNull var when: Time?
    var always: Inner

    struct Inner: Codable, Hashable, EmptyInitializable {
        var x: Bool?
        init() {}
    }

    static func annotateSchema(_ schema: inout OpenAPISchema) {
        schema.modify(["count"]) { $0.defaultValue = 3 }
    }
}

@Suite("Schemas derived from Swift types")
struct SchemaReflectionTests {
    @Test("optional members are optional, others required; types, formats, nullability and defaults follow the Swift type")
    func derived() {
        let s = SchemaReflection.schema(for: Sample.self)
        #expect(s.type == .object)
        #expect(s.properties.map(\.name) == ["name", "count", "tags", "labels", "when", "always"])
        #expect(s.required == ["name"])
        #expect(s.property("count")?.format == "int32")
        #expect(s.property("count")?.defaultValue == 3)
        #expect(s.property("tags")?.items?.schema.type == .string)
        #expect(s.property("labels")?.additionalProperties?.schema.type == .string)
        #expect(s.property("when")?.nullable == true)
        #expect(s.property("when")?.format == "date-time")
        #expect(s.property("always")?.property("x")?.type == .boolean)
        #expect(s.structuralProblems().isEmpty)
    }

    @Test("validation reports type, required, unknown-field and enum problems with their paths")
    func validation() throws {
        let s = SchemaReflection.schema(for: Sample.self)
        let errors = s.validate(try JSONParser.parse(#"{"count":"x","tags":[1],"extra":true,"when":null}"#))
        #expect(Set(errors.map(\.field)) == ["name", "count", "tags[0]", "extra"])
        #expect(errors.first { $0.field == "extra" }?.reason == .unknownField)
    }

    @Test("defaults fill absent members only, and pruning removes unknown ones")
    func defaultsAndPrune() throws {
        let s = SchemaReflection.schema(for: Sample.self)
        #expect(s.applyDefaults(to: ["name": "a"])["count"] == 3)
        #expect(s.applyDefaults(to: ["name": "a", "count": 7])["count"] == 7)
        let (pruned, removed) = s.prune(["name": "a", "x": 1, "always": ["x": true, "y": 2]])
        #expect(pruned == ["name": "a", "always": ["x": true]])
        #expect(removed == ["x", "always.y"])
    }

    @Test("EmitNull writes null and reads a missing key as nil; empty structs are always written")
    func wireForms() throws {
        let sample = Sample(name: "a", count: nil, tags: nil, labels: nil, when: nil, always: .init())
        let json = KubeCodec.encodeValue(sample)
        #expect(json["when"] == .null)
        #expect(json["always"] == .emptyObject)
        #expect(json["count"] == nil)
        let back = try KubeCodec.decodeValue(Sample.self, from: ["name": "a"])
        #expect(back == sample)
    }
}

@Suite("Bounded messages: a condition or Event holds the beginning and the last lines of a long message")
struct StatusTextTests {
    @Test("a 6 KB traceback becomes at most the limit, keeping the first line and the last error line; short text is unchanged")
    func bounded() {
        let lines = ["cluster ns/b, wait br command failed, errMsg Traceback (most recent call last):"]
            + (1...120).map { "  File \"/usr/lib/python3/x\($0).py\", line \($0), in frame_\($0)" } + ["Error: [BR:Common:ErrUnknown] disk full"]
        let text = lines.joined(separator: "\n")
        #expect(text.utf8.count > 6000)
        let cut = StatusText.bounded(text)
        #expect(cut.utf8.count <= StatusText.conditionLimit, "\(cut.utf8.count)")
        #expect(cut.hasPrefix("cluster ns/b, wait br command failed") && cut.hasSuffix("Error: [BR:Common:ErrUnknown] disk full"))
        #expect(cut.contains("bytes in all; the whole output is in the Job's log"))
        #expect(StatusText.bounded(text, limit: StatusText.eventLimit).utf8.count <= StatusText.eventLimit)
        #expect(StatusText.bounded("short") == "short")
        let wide = String(repeating: "é", count: 3000)
        #expect(!StatusText.bounded(wide).contains("\u{FFFD}"))
    }
}

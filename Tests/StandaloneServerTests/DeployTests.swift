import Foundation
import KubeModel
import Testing

/// deploy/ renders with kustomize and the operator accepts the Deployment's arguments.
@Suite struct DeployTests {
    @Test func kustomizeRendersTheInstallAndTheOperatorAcceptsItsArguments() async throws {
        guard let kubectl = Harness.kubectlPath else { Issue.record("kubectl is not installed"); return }
        let rendered = try await Harness.runAsync(kubectl, ["kustomize", RepoPaths.path("deploy")])
        #expect(rendered.code == 0, "\(rendered.stderr)")
        let docs = try KubeYAML.documents(rendered.stdout).map(\.value)
        let kinds = docs.compactMap { $0["kind"]?.stringValue }.sorted()
        #expect(kinds == ["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "CustomResourceDefinition",
                          "CustomResourceDefinition", "CustomResourceDefinition", "Deployment", "Namespace", "ServiceAccount"])
        let deployment = try #require(docs.first { $0["kind"] == "Deployment" })
        let container = try #require(deployment.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first)
        let args = container["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(args.first == "run")
        #expect(deployment.value(at: ["spec", "template", "spec", "serviceAccountName"])?.stringValue
            == docs.first { $0["kind"] == "ServiceAccount" }?.value(at: ["metadata", "name"])?.stringValue)
        // Every flag parses: the run stops only at the missing kubeconfig.
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-kubeconfig-\(UUID())").path
        let run = try await Harness.runAsync(CrashTests.binary, args + ["--kubeconfig", missing], timeout: 60)
        #expect(run.code != 0)
        #expect(run.stderr.contains("cannot read kubeconfig"), "\(run.stderr)")
    }

    @Test("setting the image (kustomize's images entry) changes the Deployment's image and the image its Jobs run alike")
    func jobsRunTheOperatorsImage() async throws {
        guard let kubectl = Harness.kubectlPath else { Issue.record("kubectl is not installed"); return }
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("deploy-\(UUID())").path
        try FileManager.default.copyItem(atPath: RepoPaths.path("deploy"), toPath: copy)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        let file = copy + "/kustomization.yaml"
        let text = try String(contentsOfFile: file, encoding: .utf8)
            .replacingOccurrences(of: "    newName: tidb-backup-operator", with: "    newName: registry.example.com/tidb/tidb-backup-operator")
            .replacingOccurrences(of: "    newTag: latest", with: "    newTag: \"0.3.0\"")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let rendered = try await Harness.runAsync(kubectl, ["kustomize", copy])
        #expect(rendered.code == 0, "\(rendered.stderr)")
        let deployment = try #require(try KubeYAML.documents(rendered.stdout).map(\.value).first { $0["kind"] == "Deployment" })
        let container = try #require(deployment.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first)
        #expect(container["image"]?.stringValue == "registry.example.com/tidb/tidb-backup-operator:0.3.0")
        let args = container["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(args.contains("--backup-manager-image=registry.example.com/tidb/tidb-backup-operator:0.3.0"), "\(args)")
    }
}

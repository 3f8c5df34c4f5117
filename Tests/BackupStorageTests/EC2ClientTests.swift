import AWSCore
import AWSSigning
import Foundation
import StorageHTTP
import Testing
import TestServers

func motoEC2(_ moto: TestServers.Moto, secret: String? = nil, region: String = "us-west-2") -> EC2Client {
    let creds = AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: secret ?? moto.secretAccessKey)
    let endpoint = URL(string: moto.endpoint)!
    return EC2Client(region: region, ec2Endpoint: endpoint, ebsEndpoint: endpoint,
                     credentials: .fixed(creds, name: "Secret aws (access_key / secret_key)"),
                     retry: RetryPolicy(attempts: 2, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50)))
}

@Suite("EC2 and EBS direct APIs against moto with signature checks", .serialized)
struct EC2ClientTests {
    @Test("volumes, tags, snapshots (pages, filters), sizes from the EBS direct APIs, deletes with NotFound as false")
    func roundTrip() async throws {
        let moto = try await TestServers.moto()
        let ec2 = motoEC2(moto)
        let run = "run-\(UInt32.random(in: 0...UInt32.max))"
        let volume = try await ec2.createVolume(EC2VolumeRequest(availabilityZone: "us-west-2a", sizeGiB: 10, volumeType: "gp3",
                                                                 iops: 3000, throughput: 125, tags: ["test-run": run]))
        #expect(volume.id.hasPrefix("vol-"))
        #expect(volume.availabilityZone == "us-west-2a")
        #expect(volume.tags["test-run"] == run)

        // Three written blocks at the first snapshot; one changed and one added at the second.
        try await ec2.createTags(resources: [volume.id], tags: ["moto-test:blocks": "0:a,1:b,2:c"])
        let first = try await ec2.createSnapshot(volumeID: volume.id, description: "first", tags: ["test-run": run, "n": "1"])
        try await ec2.createTags(resources: [volume.id], tags: ["moto-test:blocks": "0:a,1:B,2:c,3:d"])
        let second = try await ec2.createSnapshot(volumeID: volume.id, description: "second", tags: ["test-run": run, "n": "2"])
        #expect(first.id.hasPrefix("snap-") && second.id.hasPrefix("snap-") && first.id != second.id)

        let byVolume = try await ec2.describeSnapshots(filters: [("volume-id", [volume.id])], pageSize: 5)
        #expect(Set(byVolume.map(\.id)) == [first.id, second.id])
        let byTag = try await ec2.describeSnapshots(filters: [("tag:test-run", [run]), ("tag:n", ["2"])])
        #expect(byTag.map(\.id) == [second.id])
        #expect(byTag.first?.tags["n"] == "2")
        #expect(byTag.first?.volumeID == volume.id)
        let byID = try await ec2.describeSnapshots(ids: [first.id])
        #expect(byID.map(\.state) == ["completed"])

        #expect(try await ec2.snapshotSize(first.id) == 3 * 524288)
        #expect(try await ec2.snapshotSize(second.id) == 4 * 524288)
        // moto compares the blocks of the first snapshot: block 1 changed.
        #expect(try await ec2.changedSize(from: first.id, to: second.id) == 524288)

        let restored = try await ec2.createVolume(EC2VolumeRequest(availabilityZone: "us-west-2b", snapshotID: second.id, tags: ["test-run": run]))
        let described = try await ec2.describeVolumes(filters: [("tag:test-run", [run])])
        #expect(Set(described.map(\.id)) == [volume.id, restored.id])
        #expect(described.first { $0.id == restored.id }?.snapshotID == second.id)

        #expect(try await ec2.deleteSnapshot(first.id))
        #expect(try await ec2.deleteSnapshot(first.id) == false)
        #expect(try await ec2.deleteVolume(restored.id))
        #expect(try await ec2.deleteVolume(restored.id) == false)
        #expect(try await ec2.describeSnapshots(filters: [("volume-id", [volume.id])]).map(\.id) == [second.id])
    }

    @Test("a refused signature names AWS's code and the credential source, never the secret")
    func badSecret() async throws {
        let moto = try await TestServers.moto()
        let secret = "wrong-secret-\(UInt32.random(in: 0...UInt32.max))"
        let ec2 = motoEC2(moto, secret: secret)
        do {
            _ = try await ec2.describeVolumes()
            Issue.record("expected a signature failure")
        } catch let e as EC2Error {
            #expect(!e.description.contains(secret))
            #expect(e.description.contains("Secret aws"), "\(e.description)")
            #expect(e.code != "RequestFailed" && e.status >= 400, "\(e.description)")
        }
    }

    @Test("an invalid id reaches the caller with AWS's error code")
    func invalidID() async throws {
        let ec2 = motoEC2(try await TestServers.moto())
        do {
            _ = try await ec2.createSnapshot(volumeID: "vol-00000000000000000")
            Issue.record("expected InvalidVolume.NotFound")
        } catch let e as EC2Error {
            #expect(e.code == "InvalidVolume.NotFound", "\(e.description)")
            #expect(e.description.contains("CreateSnapshot"))
        }
    }

    @Test("an EBS direct API failure says EBS, an EC2 one EC2")
    func serviceInErrors() async throws {
        let moto = try await TestServers.moto()
        let ec2 = motoEC2(moto, secret: "wrong-secret")
        do {
            _ = try await ec2.listSnapshotBlocks("snap-00000000000000000")
            Issue.record("expected a failure")
        } catch let e as EC2Error {
            #expect(e.service == "EBS" && e.description.hasPrefix("EBS ListSnapshotBlocks failed"), "\(e.description)")
        }
        do {
            _ = try await ec2.describeVolumes()
            Issue.record("expected a failure")
        } catch let e as EC2Error {
            #expect(e.description.hasPrefix("EC2 DescribeVolumes failed"), "\(e.description)")
        }
    }

    @Test("the environment gives region, endpoints and credentials as the AWS CLI reads them")
    func fromEnvironment() throws {
        let c = try EC2Client.fromEnvironment(["AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
                                               "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"])
        #expect(c.region == "eu-west-1")
        #expect(c.ec2Endpoint.absoluteString == "http://127.0.0.1:5000")
        #expect(c.ebsEndpoint.absoluteString == "http://127.0.0.1:5000")
        let d = try EC2Client.fromEnvironment([:], fallbackRegion: "us-east-1")
        #expect(d.ec2Endpoint.absoluteString == "https://ec2.us-east-1.amazonaws.com")
        #expect(d.ebsEndpoint.absoluteString == "https://ebs.us-east-1.amazonaws.com")
        #expect(throws: CredentialsError.self) { try EC2Client.fromEnvironment([:]) }
        #expect(throws: CredentialsError.self) { try EC2Client.fromEnvironment(["AWS_REGION": "x", "AWS_ENDPOINT_URL_EC2": "nota url"]) }
    }
}

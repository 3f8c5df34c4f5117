# One small image with both executables: `tidb-backup-operator` (the controllers) and
# `tidb-backup-manager` (the Job entrypoint; BR, Dumpling and Lightning come from init containers or
# the toolImage, as with TiDB Operator).
FROM swift:6.1-noble AS build
WORKDIR /src
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
RUN swift build -c release --static-swift-stdlib \
    --product tidb-backup-operator && \
    swift build -c release --static-swift-stdlib --product tidb-backup-manager && \
    mkdir /out && cp .build/release/tidb-backup-operator .build/release/tidb-backup-manager /out/

FROM ubuntu:noble
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata libmariadb3 && \
    rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# TiDB Operator's Job containers have no command: the image entrypoint receives `backup ...` etc.
ENTRYPOINT ["/usr/local/bin/tidb-backup-manager"]

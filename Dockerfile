# rds-csi image, one for both parts (`rds-csi node` in the DaemonSet, `rds-csi controller` in
# the Deployment): Node 24, the host tools the node plugin spawns, production dependencies only
# (the controller's ssh2 is pure JavaScript: no install script needed), and the bundled build
# (dist/: tree-shaken chunks, no TypeScript stripping at start-up, a third less memory than
# running the sources).
#
#   docker build -t ghcr.io/srvlab/rds-csi:0.1.0 .
#
# The base is pinned to the Node release the tests run on (the `node` devDependency); the
# floating node:24-bookworm-slim tag would work too. Debian 12 ships nvme-cli 2.4 (>= 2.0).

# ---- build: bundle the plugin with the dev dependencies (rolldown), then throw them away
# Built at the path it runs from, by the Node it runs on (the same base image): V8's code cache
# (dist/.compile-cache, filled by one start of the bundle during the build) is keyed by file path,
# and the node plugin's start-up snapshot (dist/node.blob, which the DaemonSet's NODE_OPTIONS
# name) holds the paths it was built at and loads only in the Node release that built it.
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /opt/rds-csi
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` devDependency's binary is not needed, the base has Node 24.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY rolldown.config.mjs ./
COPY scripts/build.mjs scripts/lazy-externals.mjs scripts/snapshot.mjs scripts/snapshot-entry.cjs ./scripts/
COPY bin ./bin
COPY src ./src
RUN node scripts/build.mjs && test -s dist/node.blob

# ---- the image
FROM node:24.21.0-bookworm-slim

# nvme-cli: connect/disconnect; e2fsprogs, xfsprogs: mkfs, resize; util-linux, mount: blkid,
# mount, umount; kmod: modprobe for `rds-csi doctor` (and nvme-tcp, with /lib/modules mounted).
# perl-base (Essential, already in the base) runs the node plugin's spawn helper
# (src/process/SpawnHelper.ts).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nvme-cli e2fsprogs xfsprogs util-linux mount kmod \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/rds-csi
COPY package.json package-lock.json ./
# --omit=dev: Effect and its Node platform, protobufjs, the Kubernetes client and ssh2 only (the
# plugin's gRPC server is its own, src/csi/UnaryServer.ts: grpc-js is the tests' client, a dev
# dependency);
# --ignore-scripts: no production dependency needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf /root/.npm
COPY bin ./bin
COPY --from=build /opt/rds-csi/dist ./dist

# Nothing is written outside mounted volumes, so the root file system can be read-only; HOME
# points at the /tmp emptyDir for any tool that looks there. NODE_OPTIONS are the node plugin's,
# the DaemonSet's own (deploy/README.md, "The node plugin's NODE_OPTIONS"): a heap capped below
# its memory limit and a 1 MiB young generation, V8's interpreter only (round 5), no parse of
# Node's bundled root certificates at every start (~0.6 s of an emulated vCPU, round 8; the
# Kubernetes client trusts its kubeconfig's CA, or those roots when it names none), and the
# start-up snapshot the build stage made (rounds 6 and 8): `rds-csi node`, restarted on every
# node, starts in one Node boot as the image starts it. Every other command (the controller, whose
# Deployment sets its own; `rds-csi doctor`) starts itself again without --jitless and the blob
# (bin/rds-csi.js): one more Node boot for a command started once.
ENV NODE_ENV=production \
    HOME=/tmp \
    NODE_OPTIONS="--max-old-space-size=160 --max-semi-space-size=1 --jitless --use-openssl-ca --snapshot-blob=/opt/rds-csi/dist/node.blob"

# Root, deliberately: the node plugin mounts, formats and connects NVMe devices (privileged in
# the DaemonSet). The sidecars run without privileges; `rds-csi doctor` works as any user.
USER root
ENTRYPOINT ["node", "/opt/rds-csi/bin/rds-csi.js"]
CMD ["--help"]

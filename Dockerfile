# rds-csi node plugin image: Node 24 (runs the TypeScript sources directly, no build step), the
# host tools the plugin spawns, and production dependencies only.
#
#   docker build -t ghcr.io/srvlab/rds-csi:0.1.0 .
#
# The base is pinned to the Node release the tests run on (the `node` devDependency); the
# floating node:24-bookworm-slim tag would work too. Debian 12 ships nvme-cli 2.4 (>= 2.0).
FROM node:24.21.0-bookworm-slim

# nvme-cli: connect/disconnect; e2fsprogs, xfsprogs: mkfs, resize; util-linux, mount: blkid,
# mount, umount; kmod: modprobe for `rds-csi doctor` (and nvme-tcp, with /lib/modules mounted).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nvme-cli e2fsprogs xfsprogs util-linux mount kmod \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/rds-csi
COPY package.json package-lock.json ./
# --omit=dev: the `node` devDependency (the tests' Node 24) is not needed, the base has Node 24;
# --ignore-scripts: no production dependency needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf /root/.npm
COPY bin ./bin
COPY src ./src

# Nothing is written outside mounted volumes, so the root file system can be read-only: Node
# strips types in memory, writes no compile cache unless asked, and HOME points at the /tmp
# emptyDir for any tool that looks there. The heap is sized in the DaemonSet (NODE_OPTIONS).
ENV NODE_ENV=production \
    HOME=/tmp

# Root, deliberately: the node plugin mounts, formats and connects NVMe devices (privileged in
# the DaemonSet). The sidecars run without privileges; `rds-csi doctor` works as any user.
USER root
ENTRYPOINT ["node", "/opt/rds-csi/bin/rds-csi.js"]
CMD ["--help"]

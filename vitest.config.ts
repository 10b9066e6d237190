import { defineConfig } from "vitest/config"

// Four projects, one per kind of proof (SPEC §7):
//  unit        test layers only, fast, no root, no network, no host tool (npm run test:unit)
//  host        the real host binaries: kubectl kustomize, nvme-cli, mkfs/resize, nix, npm ci
//              (*.host.test.ts; scripts/prepare-host.sh host installs what they run)
//  integration the real kube-apiserver + etcd on loopback (test/cluster starts them)
//  e2e         the real Linux kernel in a throw-away VM (test/e2e/vm)
export default defineConfig({
  test: {
    reporters: ["default"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/integration/**", "test/e2e/**", "test/**/*.host.test.ts"],
          testTimeout: 30_000
        }
      },
      {
        test: {
          name: "host",
          include: ["test/**/*.host.test.ts"],
          testTimeout: 300_000
        }
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/cluster/globalSetup.ts"],
          testTimeout: 120_000,
          hookTimeout: 600_000,
          fileParallelism: false
        }
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 900_000,
          hookTimeout: 900_000,
          fileParallelism: false
        }
      }
    ]
  }
})

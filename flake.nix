{
  description = "rds-csi: Kubernetes CSI node plugin for NVMe over TCP, on Effect";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # The tools the node plugin runs on the host (nvme-cli, mkfs, mount, blkid).
      runtimeTools = pkgs: with pkgs; [ nvme-cli e2fsprogs xfsprogs util-linux kmod ];
    in
    {
      packages = forAll (pkgs: {
        default = pkgs.buildNpmPackage {
          pname = "rds-csi";
          version = "0.1.0";
          src = self;
          nodejs = pkgs.nodejs_24;
          # Update with `prefetch-npm-deps package-lock.json` after changing dependencies.
          npmDepsHash = pkgs.lib.fakeHash;
          # Node 24 runs the TypeScript sources directly (type stripping): nothing to build.
          dontNpmBuild = true;
          npmInstallFlags = [ "--omit=dev" "--ignore-scripts" ];
          nativeBuildInputs = [ pkgs.makeWrapper ];
          postInstall = ''
            makeWrapper ${pkgs.nodejs_24}/bin/node $out/bin/rds-csi \
              --add-flags $out/lib/node_modules/rds-csi/bin/rds-csi.js \
              --prefix PATH : ${pkgs.lib.makeBinPath (runtimeTools pkgs)}
          '';
          meta = {
            description = "CSI node plugin for NVMe/TCP volumes that survives link loss and renumbering";
            license = pkgs.lib.licenses.asl20;
            mainProgram = "rds-csi";
          };
        };
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            nodejs_24
            kubectl
            qemu
            busybox
            etcd_3_4
            openssl
            xz
            iproute2
          ] ++ runtimeTools pkgs;
          shellHook = ''
            echo "rds-csi dev shell: npm ci && npm run test:unit (npm test needs root for the VM and the test API server)"
          '';
        };
      });
    };
}

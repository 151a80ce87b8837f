#!/usr/bin/env bash
# The photo story's screen, run by hack/demo.sh after the photo story: the photo viewer
# (manifests/examples/photo-viewer/, a single-page app) is packed into a bundle, added as a
# webview app with display priority 10 to the photo story's manifest, signed and published
# as revision 5 in the test cloud; once it shows a photo, `fleetletctl screenshot` saves the
# screen to $FLEETLET_DEV_DIR/photo-viewer.png. Needs what hack/demo.sh set up: fleetletd with
# a display, the node services, $FLEETLET_DEV_DIR/cloud/photos.yaml (revision 4).
set -euo pipefail
cd "$(dirname "$0")/.."
cloud=$FLEETLET_DEV_DIR/cloud
if [[ ! -f $cloud/photos.yaml ]]; then
  echo "no photo story in this demo ($cloud/photos.yaml): photo viewer skipped"
  exit 0
fi
bundle=$FLEETLET_DEV_DIR/photo-viewer.tar.gz
tar -C manifests/examples/photo-viewer -czf "$bundle" index.html fleetlet-app.json
sha=$(sha256sum "$bundle" | cut -d' ' -f1)
sed 's/^revision: 4$/revision: 5/' "$cloud/photos.yaml" >"$cloud/photos-viewer.yaml"
cat >>"$cloud/photos-viewer.yaml" <<YAML
  photo-viewer:
    runtime: webview
    bundle: {url: "file://$bundle", sha256: "$sha"}
    services: [events, blobs]
    display: {priority: 10}
YAML
fleetletctl manifest sign -f "$cloud/photos-viewer.yaml" --key "$cloud/fleet.key" \
  -o "$cloud/photos-viewer.dsse.json"
mv "$cloud/photos-viewer.dsse.json" "$cloud/www/nodes/dev-node.json"
shown=0
for _ in $(seq 1 60); do
  fleetletctl get apps | grep -q '^photo-viewer .*running' && shown=1 && break
  sleep 1
done
if ((!shown)); then
  fleetletctl describe app photo-viewer >&2 || true
  echo "demo-photo-viewer: the photo viewer did not run within 60 s" >&2
  exit 1
fi
fleetletctl describe app photo-viewer | sed -n '/^Screen:/,/^Spec:/p' | grep -v '^Spec:' || true
sleep 3  # the viewer polls the metadata events every second and loads the photo
fleetletctl screenshot photo-viewer -o "$FLEETLET_DEV_DIR/photo-viewer.png"
echo "the screen with the latest photo: $FLEETLET_DEV_DIR/photo-viewer.png"

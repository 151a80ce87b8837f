// The inspection-photo flow of blobs-v1.md with Node's built-in fetch, FormData and Blob:
// upload a JPEG with metadata, then download it. Prints one JSON line with the outcome.
// Usage: node inspection_photo.mjs <base-url> <photo.jpg>
import fs from 'node:fs';

const [base, path] = process.argv.slice(2);
const bytes = fs.readFileSync(path);
const form = new FormData();
form.append('blob', new Blob([bytes], {type: 'image/jpeg'}), 'photo.jpg');
form.append('metadata', JSON.stringify({
  semantics: 'com.myapp.quality-inspection-photos',
  retentionPolicy: {policy: 'keepUntilTime', until: 28499383002},
}));
const r = await fetch(`${base}/api/v1/blobs`, {method: 'POST', body: form});
const status = r.status;
const body = await r.json();
if (status !== 201) {
  console.log(JSON.stringify({status, body}));
  process.exit(1);
}
const got = await fetch(`${base}/api/v1/blobs/${body.handle}`);
const downloaded = Buffer.from(await got.arrayBuffer());
console.log(JSON.stringify({
  status,
  handle: body.handle,
  downloadStatus: got.status,
  downloadType: got.headers.get('content-type'),
  identical: Buffer.compare(downloaded, bytes) === 0,
}));

#pragma once
// importArchive: loads an OCI image-layout archive (a tar, optionally compressed, with
// `oci-layout`, `index.json` and `blobs/sha256/…`) into containerd, for devices without a
// registry. Blobs stream from the archive into the content store, where containerd verifies
// each against its digest; then every image the index names is unpacked and recorded
// exactly as a pull would.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "image/puller.h"
#include "image/store.h"

namespace fleetlet::image {

struct ImportOptions {
  // The image name to record when the archive holds one image whose index entry carries no
  // full reference (only a tag, or nothing).
  std::optional<std::string> name;
  PullOptions pull;
};

// Imports every image of the archive. Errors name the problem and the entry:
// "archive has no index.json", "digest mismatch for blob sha256:… in archive", "blob sha256:…
// is not in the archive". Nothing is recorded as an image unless all its blobs verified.
Result<std::vector<PullResult>> importArchive(const std::filesystem::path& archive,
                                              const ImageStore& store,
                                              const ImportOptions& options);

}  // namespace fleetlet::image

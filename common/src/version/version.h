#pragma once
// fleetlet's version, as every binary prints it for --version (common/src/version/CMakeLists.txt
// says where it comes from): "0.1.0+g6f6d8d6", or "1.2.0-3-gabc1234" three commits after v1.2.0.

#include <string>
#include <string_view>

namespace fleetlet {

std::string_view version();

// "<binary> <version>", the line --version prints.
std::string versionLine(std::string_view binary);

}  // namespace fleetlet

#pragma once
// Raw JSON text: finding values inside a document that is already known to be valid JSON
// (nlohmann parsed it) and copying them without insignificant whitespace, so that payloads
// travel exactly as written. nlohmann::json cannot hold every JSON number: it turns
// 123456789012345678901234567890 into 1.2345678901234568e+29 and -0 into 0.
//
// Concurrency: pure functions. Every function expects valid JSON; on anything else the result
// is unspecified (but stays within the text).

#include <string>
#include <string_view>
#include <vector>

namespace fleetlet::streams {

// The value of member `key` of the object `object` (the last one when the key repeats, as
// nlohmann keeps it); empty when absent. Keys are compared after unescaping.
std::string_view rawMember(std::string_view object, std::string_view key);
// The elements of the array `array`, in order.
std::vector<std::string_view> rawElements(std::string_view array);
// `value` without whitespace between tokens; strings and numbers byte for byte.
std::string compactJson(std::string_view value);

}  // namespace fleetlet::streams

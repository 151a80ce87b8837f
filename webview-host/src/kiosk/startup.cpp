#include "kiosk/startup.h"

#include <gtk/gtk.h>
#include <link.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdlib>
#include <string_view>

namespace fleetlet::webview {
namespace {

// Measured with LD_DEBUG=bindings on WebKitGTK 2.50.6 (Debian 12): the library with by far
// the most bindings to itself (31301 of ~72000 in a process). Others (libstdc++, libyuv)
// are worth ~1 ms each and export symbols other libraries may define too: not preloaded.
constexpr std::array<std::string_view, 1> kSelfBindingLibraries = {"libflite_cmu_time_awb.so.1"};

std::string_view baseName(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool contains(std::string_view list, std::string_view path) {
  // LD_PRELOAD separates entries by spaces or colons.
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find_first_of(" :", start);
    if (end == std::string_view::npos) end = list.size();
    if (list.substr(start, end - start) == path) return true;
    start = end + 1;
  }
  return false;
}

// GTK looks a theme NAME up as the resource /org/gtk/libgtk/theme/NAME/gtk.css first; the
// kiosk's is registered there by kiosk_theme.gresource.xml (compiled into the binary).
constexpr const char* kKioskTheme = "FleetletKiosk";
// NOLINTNEXTLINE(readability-identifier-naming): the name glib-compile-resources gives it
extern "C" void fleetlet_kiosk_theme_register_resource(void);
bool kiosk_theme_active = false;

}  // namespace

std::vector<std::string> selfBindingLibrariesLoaded() {
  std::vector<std::string> found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t /*size*/, void* data) -> int {
        if (info->dlpi_name == nullptr || info->dlpi_name[0] != '/') return 0;
        const std::string_view name = baseName(info->dlpi_name);
        for (std::string_view wanted : kSelfBindingLibraries) {
          if (name == wanted)
            static_cast<std::vector<std::string>*>(data)->emplace_back(info->dlpi_name);
        }
        return 0;
      },
      &found);
  return found;
}

std::vector<std::string> preloadSelfBindingLibrariesForHelpers() {
  const char* current = std::getenv("LD_PRELOAD");
  std::string preload = current != nullptr ? current : "";
  std::vector<std::string> added;
  for (auto& path : selfBindingLibrariesLoaded()) {
    if (contains(preload, path)) continue;
    if (!preload.empty()) preload += ' ';
    preload += path;
    added.push_back(std::move(path));
  }
  if (!added.empty()) ::setenv("LD_PRELOAD", preload.c_str(), 1);
  return added;
}

void startWithKioskTheme() {
  if (g_getenv("GTK_THEME") != nullptr) return;  // the environment's choice, from the start
  fleetlet_kiosk_theme_register_resource();
  // GTK reads GTK_THEME when it loads a theme (first: when GtkSettings are created).
  g_setenv("GTK_THEME", kKioskTheme, TRUE);
  kiosk_theme_active = true;
}

void settleKioskTheme() {
  if (!kiosk_theme_active) return;
  gtk_settings_get_default();
  g_unsetenv("GTK_THEME");
}

void restoreGtkTheme() {
  if (!kiosk_theme_active) return;
  kiosk_theme_active = false;
  GtkSettings* settings = gtk_settings_get_default();
  // GtkSettings reloads the theme on this notification; GTK_THEME is gone, so it is the
  // gtk-theme-name setting's (Adwaita unless configured).
  g_object_notify(G_OBJECT(settings), "gtk-theme-name");
  gchar* name = nullptr;
  g_object_get(settings, "gtk-theme-name", &name, nullptr);
  spdlog::info("GTK theme {} loaded", name != nullptr ? name : "(default)");
  g_free(name);
}

}  // namespace fleetlet::webview

#pragma once
// Start-up cost of WebKitGTK's helper processes (docs/webview.md, "Start-up").
//
// Every WebKitGTK process (this one, WebKitNetworkProcess, WebKitWebProcess) links about 170
// libraries, and glibc binds each symbol by walking that list in load order. One of them,
// the flite voice libflite_cmu_time_awb (WebKit's speech synthesis), has ~31000 relocations
// against its own exported symbols and sits ~50th in the list: binding it is about a quarter
// of each process's start (~15 ms of CPU of ~60 here). Preloaded, it is second in the list
// and its own symbols are found at once. It exports nothing any other library of the tree
// defines (frame_N, cmu_time_awb_*), so the order changes no binding.

#include <string>
#include <vector>

namespace fleetlet::webview {

// The libraries of kSelfBindingLibraries that this process has loaded (full paths).
// WebKit's helpers link the same libwebkit2gtk, so they load them too.
std::vector<std::string> selfBindingLibrariesLoaded();

// Appends the libraries above to LD_PRELOAD (after what the environment preloads already,
// none twice), so that the helper processes WebKit spawns from now on inherit it. Call it
// first thing in main, before any thread or child process exists. Returns what it added.
std::vector<std::string> preloadSelfBindingLibrariesForHelpers();

// GTK's theme. Creating GtkSettings parses the theme's CSS (Adwaita: ~15 ms of CPU here),
// and WebKit's web context creates them, before the view can start its web process. The
// kiosk's window shows only web views, so it starts with a one-rule theme of its own
// (kiosk-theme.css, compiled in) and loads the real one (Adwaita, or the gtk-theme-name
// setting) once the first page has been on screen for a while: for what GTK itself draws
// over a page (<select> popups, dialogs). A GTK_THEME in the environment is used from the
// start instead, as GTK would.
//
// startWithKioskTheme() before gtk_init (it sets GTK_THEME while no thread exists yet),
// settleKioskTheme() right after it (creates GtkSettings with that theme and takes GTK_THEME
// out of the environment again: WebKit's helpers do not inherit it and restoreGtkTheme()
// does not see it), restoreGtkTheme() later on the main thread; a second call does nothing.
void startWithKioskTheme();
void settleKioskTheme();
void restoreGtkTheme();

}  // namespace fleetlet::webview

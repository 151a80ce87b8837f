// cursorHiddenAt() (kiosk_fixture.h), apart from the rest: Xlib's macros (None, Status, Bool)
// clash with gtest and fleetlet names, so this file includes X11 last and nothing after it.
#include <chrono>
#include <thread>

#include "kiosk_fixture.h"
// clang-format off
#include <X11/Xlib.h>
#include <X11/extensions/Xfixes.h>
// clang-format on

namespace fleetlet::webview::testing {

Result<bool> cursorHiddenAt(const std::string& display, int x, int y) {
  Display* dpy = XOpenDisplay(display.c_str());
  if (dpy == nullptr) return fail(ErrorCode::kUnavailable, "cannot open display {}", display);
  int event_base = 0, error_base = 0;
  if (XFixesQueryExtension(dpy, &event_base, &error_base) == 0) {
    XCloseDisplay(dpy);
    return fail(ErrorCode::kUnavailable, "display {} has no XFIXES", display);
  }
  // Two moves: the window under the pointer sets its cursor on the motion.
  for (int dx : {1, 0}) {
    XWarpPointer(dpy, None, DefaultRootWindow(dpy), 0, 0, 0, 0, x + dx, y);
    XSync(dpy, False);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  XFixesCursorImage* image = XFixesGetCursorImage(dpy);
  if (image == nullptr) {
    XCloseDisplay(dpy);
    return fail(ErrorCode::kUnavailable, "no cursor image on {}", display);
  }
  bool hidden = true;
  for (size_t i = 0; i < static_cast<size_t>(image->width) * image->height; ++i) {
    if (((image->pixels[i] >> 24) & 0xff) != 0) hidden = false;
  }
  XFree(image);
  XCloseDisplay(dpy);
  return hidden;
}

}  // namespace fleetlet::webview::testing

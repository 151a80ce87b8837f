// fleetlet-webview's web process extension (loaded by WebKit into every web process of the
// kiosk's apps): answers the user message "fleetlet.memory" with the web process's resident
// set in bytes (a uint64 parameter), so that the kiosk can report each app's memory use. The
// kiosk cannot read it itself: WebKitGTK does not name a web view's web process, and inside
// the bubblewrap sandbox the process sees its own /proc/self.
//
// Built without sanitizers: the web process is not instrumented.
#include <unistd.h>
#include <webkit2/webkit-web-extension.h>

#include <fstream>

namespace {

// /proc/self/statm's resident pages × the page size; 0 when unreadable.
guint64 residentBytes() {
  std::ifstream statm("/proc/self/statm");
  guint64 size = 0, resident = 0;
  const long page = sysconf(_SC_PAGESIZE);
  return statm >> size >> resident && page > 0 ? resident * static_cast<guint64>(page) : 0;
}

gboolean onMessage(WebKitWebPage* /*page*/, WebKitUserMessage* message, gpointer /*data*/) {
  if (g_strcmp0(webkit_user_message_get_name(message), "fleetlet.memory") != 0) return FALSE;
  webkit_user_message_send_reply(
      message, webkit_user_message_new("fleetlet.memory", g_variant_new_uint64(residentBytes())));
  return TRUE;
}

void onPageCreated(WebKitWebExtension* /*extension*/, WebKitWebPage* page, gpointer /*data*/) {
  g_signal_connect(page, "user-message-received", G_CALLBACK(onMessage), nullptr);
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the entry point WebKit looks up by this name
extern "C" G_MODULE_EXPORT void webkit_web_extension_initialize(WebKitWebExtension* extension) {
  g_signal_connect(extension, "page-created", G_CALLBACK(onPageCreated), nullptr);
}

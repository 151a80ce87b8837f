#pragma once
// RAII for GLib objects: a reference to a GObject, a GLib main-loop source.

#include <glib-object.h>

#include <memory>
#include <utility>

namespace fleetlet::webview {

struct GObjectUnref {
  void operator()(void* object) const {
    if (object != nullptr) g_object_unref(object);
  }
};

// Owns one reference.
template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

// Takes an extra reference to `object` (for borrowed pointers).
template <typename T>
GObjectPtr<T> retain(T* object) {
  if (object != nullptr) g_object_ref(object);
  return GObjectPtr<T>(object);
}

// A main-loop source id, removed when the owner lets go.
class SourceId {
 public:
  SourceId() = default;
  explicit SourceId(guint id) : id_(id) {}
  SourceId(SourceId&& other) noexcept : id_(std::exchange(other.id_, 0)) {}
  SourceId& operator=(SourceId&& other) noexcept {
    reset(std::exchange(other.id_, 0));
    return *this;
  }
  SourceId(const SourceId&) = delete;
  SourceId& operator=(const SourceId&) = delete;
  ~SourceId() { reset(); }

  void reset(guint id = 0) {
    if (id_ != 0) g_source_remove(id_);
    id_ = id;
  }
  // The source ended by itself (its callback returned G_SOURCE_REMOVE): forget the id.
  void released() { id_ = 0; }
  bool active() const { return id_ != 0; }

 private:
  guint id_ = 0;
};

}  // namespace fleetlet::webview

# Generates C++ types (no gRPC) for the protos the shim speaks: the ttrpc envelope (ours),
# containerd's shim API (containerd.task.v2), its task events, the ttrpc Events service and
# cgroups v1 metrics, from Debian's golang-github-containerd-*-dev packages. As in
# agent/src/containerd/protos.cmake, `import weak` is made plain for protoc 3.21. The shim has
# its own copy, not the agent's library, so it links protobuf alone, without gRPC.
set(SHIM_GOPATH /usr/share/gocode/src)
set(SHIM_PROTO_ROOT ${CMAKE_CURRENT_BINARY_DIR}/proto)
set(SHIM_GEN_ROOT ${CMAKE_CURRENT_BINARY_DIR}/gen)
find_program(PROTOC protoc REQUIRED)
include(${PROJECT_SOURCE_DIR}/cmake/ProtoCopy.cmake)

set(shim_protos
  github.com/containerd/containerd/runtime/v2/task/shim.proto
  github.com/containerd/containerd/runtime/v2/runc/options/oci.proto
  github.com/containerd/containerd/api/types/mount.proto
  github.com/containerd/containerd/api/types/task/task.proto
  github.com/containerd/containerd/api/events/task.proto
  github.com/containerd/containerd/api/services/ttrpc/events/v1/events.proto
  github.com/containerd/containerd/protobuf/plugin/fieldpath.proto
  github.com/containerd/cgroups/stats/v1/metrics.proto
  gogoproto/gogo.proto
  ttrpc/ttrpc.proto)

set(shim_generated)
foreach(proto ${shim_protos})
  if(proto STREQUAL "gogoproto/gogo.proto")
    set(src ${SHIM_GOPATH}/github.com/gogo/protobuf/gogoproto/gogo.proto)
  elseif(proto STREQUAL "ttrpc/ttrpc.proto")
    set(src ${CMAKE_CURRENT_SOURCE_DIR}/src/ttrpc/ttrpc.proto)
  else()
    set(src ${SHIM_GOPATH}/${proto})
  endif()
  set(dst ${SHIM_PROTO_ROOT}/${proto})
  fleetlet_copy_proto(${src} ${dst})
  string(REGEX REPLACE "\\.proto$" "" stem ${proto})
  set(outputs ${SHIM_GEN_ROOT}/${stem}.pb.cc ${SHIM_GEN_ROOT}/${stem}.pb.h)
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${SHIM_GEN_ROOT}
    COMMAND ${PROTOC} -I${SHIM_PROTO_ROOT} -I/usr/include --cpp_out=${SHIM_GEN_ROOT}
            ${SHIM_PROTO_ROOT}/${proto}
    DEPENDS ${dst}
    COMMENT "protoc ${proto} (shim)")
  list(APPEND shim_generated ${outputs})
endforeach()

if(FLEETLET_STATIC_DEPS)
  fleetlet_find_archives(shim_protobuf_archives protobuf)
  add_library(fleetlet_shim_dep_protobuf INTERFACE)
  target_link_libraries(fleetlet_shim_dep_protobuf INTERFACE ${shim_protobuf_archives}
    Threads::Threads)
  target_include_directories(fleetlet_shim_dep_protobuf SYSTEM INTERFACE ${Protobuf_INCLUDE_DIRS})
else()
  add_library(fleetlet_shim_dep_protobuf INTERFACE)
  target_link_libraries(fleetlet_shim_dep_protobuf INTERFACE protobuf::libprotobuf)
endif()

add_library(fleetlet_shim_protos STATIC ${shim_generated})
target_include_directories(fleetlet_shim_protos SYSTEM PUBLIC ${SHIM_GEN_ROOT})
target_link_libraries(fleetlet_shim_protos PUBLIC fleetlet_shim_dep_protobuf)

# Generates C++ and gRPC stubs for containerd's API from the protos that Debian's
# golang-github-containerd-containerd-dev ships. protoc 3.21 refuses `import weak`, so the
# tree is copied into the build directory with those imports made plain.
set(CONTAINERD_GOPATH /usr/share/gocode/src)
set(CONTAINERD_PROTO_ROOT ${CMAKE_CURRENT_BINARY_DIR}/proto)
set(CONTAINERD_GEN_ROOT ${CMAKE_CURRENT_BINARY_DIR}/gen)

find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
find_program(PROTOC protoc REQUIRED)
include(${PROJECT_SOURCE_DIR}/cmake/ProtoCopy.cmake)

set(containerd_api github.com/containerd/containerd/api)
set(containerd_protos
  ${containerd_api}/types/descriptor.proto
  ${containerd_api}/types/mount.proto
  ${containerd_api}/types/platform.proto
  ${containerd_api}/types/metrics.proto
  ${containerd_api}/types/task/task.proto
  ${containerd_api}/events/container.proto
  ${containerd_api}/events/content.proto
  ${containerd_api}/events/image.proto
  ${containerd_api}/events/namespace.proto
  ${containerd_api}/events/snapshot.proto
  ${containerd_api}/events/task.proto
  github.com/containerd/containerd/protobuf/plugin/fieldpath.proto
  github.com/containerd/cgroups/stats/v1/metrics.proto
  gogoproto/gogo.proto)
set(containerd_services containers content diff events images leases namespaces snapshots tasks
    version)

set(service_protos)
foreach(service ${containerd_services})
  file(GLOB found RELATIVE ${CONTAINERD_GOPATH}/${containerd_api}/services/${service}/v1
       ${CONTAINERD_GOPATH}/${containerd_api}/services/${service}/v1/*.proto)
  foreach(f ${found})
    list(APPEND service_protos ${containerd_api}/services/${service}/v1/${f})
  endforeach()
endforeach()

set(generated_sources)
foreach(proto ${containerd_protos} ${service_protos})
  if(proto STREQUAL "gogoproto/gogo.proto")
    set(src ${CONTAINERD_GOPATH}/github.com/gogo/protobuf/gogoproto/gogo.proto)
  else()
    set(src ${CONTAINERD_GOPATH}/${proto})
  endif()
  set(dst ${CONTAINERD_PROTO_ROOT}/${proto})
  fleetlet_copy_proto(${src} ${dst})

  string(REGEX REPLACE "\\.proto$" "" stem ${proto})
  set(outputs ${CONTAINERD_GEN_ROOT}/${stem}.pb.cc ${CONTAINERD_GEN_ROOT}/${stem}.pb.h)
  set(grpc_args)
  if(proto IN_LIST service_protos)
    list(APPEND outputs ${CONTAINERD_GEN_ROOT}/${stem}.grpc.pb.cc
         ${CONTAINERD_GEN_ROOT}/${stem}.grpc.pb.h)
    set(grpc_args --grpc_out=${CONTAINERD_GEN_ROOT} --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN})
  endif()
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CONTAINERD_GEN_ROOT}
    COMMAND ${PROTOC} -I${CONTAINERD_PROTO_ROOT} -I/usr/include --cpp_out=${CONTAINERD_GEN_ROOT}
            ${grpc_args} ${CONTAINERD_PROTO_ROOT}/${proto}
    DEPENDS ${dst}
    COMMENT "protoc ${proto}")
  list(APPEND generated_sources ${outputs})
endforeach()

add_library(fleetlet_containerd_protos STATIC ${generated_sources})
target_include_directories(fleetlet_containerd_protos SYSTEM PUBLIC ${CONTAINERD_GEN_ROOT})
target_link_libraries(fleetlet_containerd_protos PUBLIC fleetlet_dep_grpc)

# Link targets for the C++ and C libraries whose shared builds cost fleetlet's daemons the most
# memory: gRPC (with Abseil, RE2, c-ares, upb), protobuf, SQLite and yaml-cpp. Modules link
# these names instead of the packages' own targets:
#
#   fleetlet_dep_grpc      gRPC C++ client and protobuf (the containerd API)
#   fleetlet_dep_sqlite3   SQLite's C library
#   fleetlet_dep_yaml_cpp  yaml-cpp
#   fleetlet_dep_spdlog    spdlog (and fmt)
#   fleetlet_dep_fmt       fmt
#   fleetlet_dep_zlib      zlib (gzip of uploaded logs; gRPC and SQLite link it already)
#
# With FLEETLET_STATIC_DEPS (default ON) they are Debian's static archives, linked into each
# executable with --gc-sections, and gRPC is the *_unsecure build: containerd is reached over
# a unix socket, so gRPC needs no TLS and does not pull in OpenSSL. Debian ships no archives of
# spdlog and fmt; their compiled parts are built here from the installed headers (deps/). With
# those, no C++ shared library is left, so libstdc++ and libgcc are linked statically too. Every
# shared library costs a process its relocations, symbol tables and the file pages its code
# faults in (see docs/fleetletd.md, Memory); static archives keep only the objects a binary
# uses. C libraries stay shared: glibc, OpenSSL's libcrypto, libarchive and libcurl (which
# common/src/http/lazy_curl.cpp loads on first use). A future binary that links a C++ shared
# library (e.g. WebKitGTK) must not also carry a static libstdc++: give it
# -shared-libgcc and no -static-libstdc++. Sanitizer and fuzz builds use the shared libraries
# (their runtimes and link flags expect them).

if(FLEETLET_STATIC_DEPS)
  # Our own code in per-function and per-object sections so --gc-sections can drop the
  # unreferenced ones; Debian's archives are dropped at object granularity.
  add_compile_options(-ffunction-sections -fdata-sections)
  add_link_options(LINKER:--gc-sections -static-libstdc++ -static-libgcc)

  # fleetlet_find_archives(OUT name...): the full paths of lib<name>.a, in order.
  function(fleetlet_find_archives out)
    set(paths)
    foreach(name ${ARGN})
      find_library(FLEETLET_ARCHIVE_${name} NAMES lib${name}.a NO_CMAKE_PATH REQUIRED)
      list(APPEND paths ${FLEETLET_ARCHIVE_${name}})
    endforeach()
    set(${out} ${paths} PARENT_SCOPE)
  endfunction()

  # The Abseil archives gRPC needs, from pkg-config's --static list (in link order, deduped).
  # grpc_unsecure.pc omits what grpc.pc lists itself: RE2, upb, c-ares, address_sorting, zlib.
  pkg_check_modules(GRPCPP_UNSECURE REQUIRED grpc++_unsecure)
  set(grpc_archive_names grpc++_unsecure grpc_unsecure gpr upb re2 cares address_sorting
      protobuf z)
  foreach(lib ${GRPCPP_UNSECURE_STATIC_LIBRARIES})
    if(lib MATCHES "^absl_")
      list(APPEND grpc_archive_names ${lib})
    endif()
  endforeach()
  list(REMOVE_DUPLICATES grpc_archive_names)
  fleetlet_find_archives(grpc_archives ${grpc_archive_names})
  add_library(fleetlet_dep_grpc INTERFACE)
  # The archives reference one another in both directions: one group, rescanned.
  target_link_libraries(fleetlet_dep_grpc INTERFACE "$<LINK_GROUP:RESCAN,${grpc_archives}>"
    Threads::Threads atomic)
  target_include_directories(fleetlet_dep_grpc SYSTEM INTERFACE ${GRPCPP_UNSECURE_INCLUDE_DIRS}
    ${Protobuf_INCLUDE_DIRS})

  fleetlet_find_archives(sqlite_archives sqlite3 z)
  add_library(fleetlet_dep_sqlite3 INTERFACE)
  target_link_libraries(fleetlet_dep_sqlite3 INTERFACE ${sqlite_archives} m Threads::Threads
    ${CMAKE_DL_LIBS})
  target_include_directories(fleetlet_dep_sqlite3 SYSTEM INTERFACE ${SQLite3_INCLUDE_DIRS})

  fleetlet_find_archives(zlib_archives z)
  add_library(fleetlet_dep_zlib INTERFACE)
  target_link_libraries(fleetlet_dep_zlib INTERFACE ${zlib_archives})

  find_package(yaml-cpp REQUIRED)
  fleetlet_find_archives(yaml_archives yaml-cpp)
  add_library(fleetlet_dep_yaml_cpp INTERFACE)
  target_link_libraries(fleetlet_dep_yaml_cpp INTERFACE ${yaml_archives})
  target_include_directories(fleetlet_dep_yaml_cpp SYSTEM INTERFACE ${YAML_CPP_INCLUDE_DIR})

  add_library(fleetlet_dep_fmt STATIC ${CMAKE_CURRENT_LIST_DIR}/deps/fmt.cpp)
  add_library(fleetlet_dep_spdlog STATIC ${CMAKE_CURRENT_LIST_DIR}/deps/spdlog.cpp)
  target_compile_definitions(fleetlet_dep_spdlog PUBLIC SPDLOG_COMPILED_LIB SPDLOG_FMT_EXTERNAL)
  target_link_libraries(fleetlet_dep_spdlog PUBLIC fleetlet_dep_fmt Threads::Threads)
else()
  pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++)
  add_library(fleetlet_dep_grpc INTERFACE)
  target_link_libraries(fleetlet_dep_grpc INTERFACE protobuf::libprotobuf PkgConfig::GRPCPP)

  add_library(fleetlet_dep_sqlite3 INTERFACE)
  target_link_libraries(fleetlet_dep_sqlite3 INTERFACE SQLite::SQLite3)

  find_package(ZLIB REQUIRED)
  add_library(fleetlet_dep_zlib INTERFACE)
  target_link_libraries(fleetlet_dep_zlib INTERFACE ZLIB::ZLIB)

  find_package(yaml-cpp REQUIRED)
  add_library(fleetlet_dep_yaml_cpp INTERFACE)
  target_link_libraries(fleetlet_dep_yaml_cpp INTERFACE yaml-cpp)

  add_library(fleetlet_dep_fmt INTERFACE)
  target_link_libraries(fleetlet_dep_fmt INTERFACE fmt::fmt)
  add_library(fleetlet_dep_spdlog INTERFACE)
  target_link_libraries(fleetlet_dep_spdlog INTERFACE spdlog::spdlog)
endif()

# Helpers that give every fleetlet target the same warnings and layout.
#
# fleetlet_library(NAME SOURCES... [DEPS ...]) declares a module library whose public headers
# live next to its sources; consumers include them as "<component>/<module>/<file>.h"
# relative to the component's src/ folder (added by the caller through include dirs).

set(FLEETLET_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough
    -Wno-missing-field-initializers)

function(fleetlet_warnings target)
  target_compile_options(${target} PRIVATE ${FLEETLET_WARNINGS})
  if(FLEETLET_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(FLEETLET_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12's flow analysis runs on ASan-instrumented code and then reports false positives
    # inside Boost (Beast's optional content length, Asio's coroutine frame allocator).
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized -Wno-mismatched-new-delete)
  endif()
endfunction()

function(fleetlet_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  # Every binary prints fleetlet's version for --version (common/src/version).
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} fleetlet_version)
  fleetlet_warnings(${name})
endfunction()

# fleetlet_copy_proto(SRC DST): copies a .proto from Debian's golang packages into the build
# tree with `import weak` made plain (protoc 3.21's C++ generator refuses weak imports), and
# writes DST only when its content changes so that builds stay incremental. Re-runs cmake
# when SRC changes.
function(fleetlet_copy_proto src dst)
  if(NOT EXISTS ${src})
    message(FATAL_ERROR "proto ${src} is missing: run hack/install-deps.sh")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  file(READ ${src} content)
  string(REPLACE "import weak " "import " content "${content}")
  if(EXISTS ${dst})
    file(READ ${dst} old)
  else()
    set(old "")
  endif()
  if(NOT old STREQUAL content)
    file(WRITE ${dst} "${content}")
  endif()
endfunction()

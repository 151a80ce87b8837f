# cmake -DFLEETLETCTL=<binary> -DOUT=<dir> -P completions.cmake: writes OUT/fleetletctl (bash)
# and OUT/_fleetletctl (zsh) from `fleetletctl completion bash|zsh`.
file(MAKE_DIRECTORY ${OUT})
foreach(pair "bash;fleetletctl" "zsh;_fleetletctl")
  list(GET pair 0 shell)
  list(GET pair 1 name)
  execute_process(COMMAND ${FLEETLETCTL} completion ${shell} OUTPUT_FILE ${OUT}/${name}
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "fleetletctl completion ${shell}: ${status}")
  endif()
endforeach()

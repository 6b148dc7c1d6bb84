# One helper per kind of target, so each folder's CMakeLists.txt is a few lines.
#
#   canopy_add_library(core SOURCES src/a.cpp ... DEPS canopy::dep::threads
#                      PRIVATE_DEPS canopy::dep::spdlog)
#     -> target canopy_core, alias canopy::core, headers from include/, installed+exported.
#   canopy_add_app(registry SOURCES src/main.cpp DEPS canopy::app)
#     -> executable canopy-registry, installed.
#   canopy_add_test(core_test SOURCES test/a.cpp DEPS canopy::core LABELS core)
#     -> gtest executable; every TEST is its own CTest entry with a timeout.

set(CANOPY_WARNING_FLAGS
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
  -Wimplicit-fallthrough
  # Designated initializers that leave fields at their defaults are our config style;
  # GCC 12 warns about them anyway.
  -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 at -O2 reports uninitialised members inside libstdc++'s std::variant and
  # std::optional move constructors (false positives, GCC PR 105562 and relatives).
  list(APPEND CANOPY_WARNING_FLAGS -Wno-maybe-uninitialized)
endif()
if(CANOPY_WARNINGS_AS_ERRORS)
  list(APPEND CANOPY_WARNING_FLAGS -Werror)
endif()

if(CANOPY_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(CANOPY_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT CANOPY_SANITIZE STREQUAL "")
  message(FATAL_ERROR "CANOPY_SANITIZE must be '', 'address' or 'thread', not '${CANOPY_SANITIZE}'")
endif()
if(CANOPY_BUILD_FUZZ)
  # Coverage for libFuzzer in every library the fuzz targets link; the targets add the driver.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

function(canopy_target_defaults target)
  target_compile_options(${target} PRIVATE ${CANOPY_WARNING_FLAGS})
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  canopy_fuzz_skip_coroutines(${target})
endfunction()

# clang 14 cannot put any -fsanitize-coverage instrumentation on a coroutine's body ("cannot
# represent a difference across sections", at every -O level). In fuzz builds a source file
# that defines coroutines (it says co_await / co_return / co_yield) is compiled with ASan and
# UBSan but without coverage: the fuzzers still run through it and catch its memory errors,
# they just get no coverage feedback from inside it. Found by reading the file, so a new
# coroutine needs nothing here.
function(canopy_fuzz_skip_coroutines target)
  if(NOT CANOPY_BUILD_FUZZ)
    return()
  endif()
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  foreach(source IN LISTS sources)
    cmake_path(ABSOLUTE_PATH source BASE_DIRECTORY ${source_dir} OUTPUT_VARIABLE path)
    if(NOT path MATCHES "\\.cpp$" OR NOT EXISTS ${path})
      continue()
    endif()
    file(STRINGS ${path} coroutine_lines REGEX "co_(await|return|yield)[ ;(]" LIMIT_COUNT 1)
    if(coroutine_lines)
      set_property(SOURCE ${path} TARGET_DIRECTORY ${target} APPEND PROPERTY COMPILE_OPTIONS
                   -fno-sanitize=fuzzer-no-link)
    endif()
  endforeach()
endfunction()

function(canopy_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target canopy_${name})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(canopy::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  canopy_target_defaults(${target})
  install(TARGETS ${target} EXPORT canopy-targets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  canopy_check_headers(${target})
endfunction()

# Every public header must compile on its own (STYLE.md 12): one generated translation
# unit per header, compiled with the tests.
function(canopy_check_headers target)
  if(NOT CANOPY_BUILD_TESTS)
    return()
  endif()
  file(GLOB_RECURSE headers RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}/include
       CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/include/*.hpp)
  set(sources)
  foreach(header IN LISTS headers)
    string(MAKE_C_IDENTIFIER ${header} stem)
    set(tu ${CMAKE_CURRENT_BINARY_DIR}/header_check/${stem}.cpp)
    file(CONFIGURE OUTPUT ${tu} CONTENT "#include \"${header}\"\n")
    list(APPEND sources ${tu})
  endforeach()
  if(sources)
    add_library(${target}_header_check OBJECT ${sources})
    target_link_libraries(${target}_header_check PRIVATE ${target})
    canopy_target_defaults(${target}_header_check)
  endif()
endfunction()

function(canopy_add_app name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  set(target canopy-${name})
  add_executable(${target} ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE ${ARG_DEPS})
  canopy_target_defaults(${target})
  install(TARGETS ${target} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()

# Tests run from the build tree only. TIMEOUT is per test case (seconds).
function(canopy_add_test name)
  if(NOT CANOPY_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 60)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} canopy::dep::gtest canopy::dep::gmock
                                        canopy::dep::gtest_main)
  canopy_target_defaults(${name})
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()

# A libFuzzer target, built by the fuzz preset only: the driver linked in; the sources and
# the libraries carry the coverage instrumentation (see canopy_fuzz_skip_coroutines).
function(canopy_add_fuzz name)
  if(NOT CANOPY_BUILD_FUZZ)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  canopy_target_defaults(${name})
endfunction()

# A benchmark binary tools/bench runs; built only with CANOPY_BUILD_BENCH.
function(canopy_add_bench name)
  if(NOT CANOPY_BUILD_BENCH)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  canopy_target_defaults(${name})
endfunction()

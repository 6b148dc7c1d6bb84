# Every third-party dependency is found here, once, and given one alias in the
# canopy::dep:: namespace, so a lib's CMakeLists never names a package's own target.
# All of them are Debian packages (tools/setup installs them).

find_package(Threads REQUIRED)
find_package(spdlog CONFIG REQUIRED)            # libspdlog-dev
find_package(msgpack CONFIG REQUIRED)           # libmsgpack-cxx-dev: target msgpackc-cxx
find_package(cppzmq CONFIG REQUIRED)            # cppzmq-dev + libzmq3-dev: target cppzmq
find_package(tomlplusplus CONFIG REQUIRED)      # libtomlplusplus-dev
find_package(CLI11 CONFIG REQUIRED)             # libcli11-dev
if(CANOPY_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)           # libgtest-dev, libgmock-dev
endif()
if(CANOPY_BUILD_BENCH)
  find_package(benchmark CONFIG REQUIRED)       # libbenchmark-dev
endif()

function(canopy_dependency_alias alias target)
  if(NOT TARGET canopy::dep::${alias})
    add_library(canopy_dep_${alias} INTERFACE)
    target_link_libraries(canopy_dep_${alias} INTERFACE ${target})
    add_library(canopy::dep::${alias} ALIAS canopy_dep_${alias})
  endif()
endfunction()

canopy_dependency_alias(threads Threads::Threads)
canopy_dependency_alias(spdlog spdlog::spdlog)
# msgpack-cxx would otherwise pull in Boost for optional adaptors we do not use.
add_library(canopy_dep_msgpack INTERFACE)
target_link_libraries(canopy_dep_msgpack INTERFACE msgpackc-cxx)
target_compile_definitions(canopy_dep_msgpack INTERFACE MSGPACK_NO_BOOST)
add_library(canopy::dep::msgpack ALIAS canopy_dep_msgpack)
canopy_dependency_alias(zmq cppzmq)
canopy_dependency_alias(toml tomlplusplus::tomlplusplus)
canopy_dependency_alias(cli11 CLI11::CLI11)
if(CANOPY_BUILD_TESTS)
  canopy_dependency_alias(gtest GTest::gtest)
  canopy_dependency_alias(gtest_main GTest::gtest_main)
  canopy_dependency_alias(gmock GTest::gmock)
endif()
if(CANOPY_BUILD_BENCH)
  canopy_dependency_alias(benchmark benchmark::benchmark)
endif()

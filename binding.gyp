{
  "variables": {
    "kiln_common_cflags": ["-O3", "-std=c++17", "-fPIC", "-fvisibility=hidden", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    # Set by `npm run prebuild` (native/tools/prebuild.mjs): the Debian 11 glibc sysroot the prebuilt
    # binary links against, with libstdc++ linked in statically (native/compat/glibc-floor.cc).
    # Empty for a source build, which links the machine's own C and C++ runtimes.
    "kiln_sysroot%": "<!(node -p \"process.env.KILN_SYSROOT || ''\")"
  },
  "target_defaults": {
    "include_dirs": ["native/include", "native/src"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["<@(kiln_common_cflags)"],
    "cflags!": ["-fno-exceptions"],
    "xcode_settings": {"GCC_ENABLE_CPP_EXCEPTIONS": "YES", "CLANG_CXX_LANGUAGE_STANDARD": "c++17"},
    "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 1}},
    "conditions": [
      ["kiln_sysroot != ''", {"cflags_cc": ["--sysroot=<(kiln_sysroot)"]}]
    ]
  },
  "targets": [
    {
      "target_name": "kiln_avx2",
      "type": "static_library",
      "sources": ["<!@(node native/sources.cjs avx2)"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "kiln_avx512",
      "type": "static_library",
      "sources": ["<!@(node native/sources.cjs avx512)"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl"]
    },
    {
      "target_name": "kiln_avx512vnni",
      "type": "static_library",
      "sources": ["<!@(node native/sources.cjs avx512vnni)"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512vnni", "-mavxvnni"]
    },
    {
      "target_name": "kiln",
      "sources": ["<!@(node native/sources.cjs baseline)", "<!@(node native/sources.cjs addon)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "dependencies": ["kiln_avx2", "kiln_avx512", "kiln_avx512vnni"],
      "libraries": ["-lpthread", "-ldl"],
      "conditions": [
        ["OS == 'linux'", {"ldflags": ["-Wl,--version-script=<(module_root_dir)/native/addon/exports.map"]}],
        ["kiln_sysroot != ''", {
          "sources": ["native/compat/glibc-floor.cc"],
          "ldflags": [
            "--sysroot=<(kiln_sysroot)",
            "-B<(kiln_sysroot)/usr/lib/x86_64-linux-gnu/",
            "-L<(kiln_sysroot)/usr/lib/x86_64-linux-gnu",
            "-L<(kiln_sysroot)/lib/x86_64-linux-gnu",
            "-static-libstdc++",
            "-Wl,--wrap=exp,--wrap=log,--wrap=pow,--wrap=pthread_cond_clockwait"
          ]
        }]
      ]
    }
  ]
}

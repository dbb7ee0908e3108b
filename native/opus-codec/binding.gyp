{
  "targets": [
    {
      "target_name": "opus_codec",
      "sources": ["opus_codec.c"],
      "dependencies": ["../../node_modules/@discordjs/opus/deps/binding.gyp:libopus"],
      "include_dirs": ["../../node_modules/@discordjs/opus/deps/opus/include"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}

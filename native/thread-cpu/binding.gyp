{
  "targets": [
    {
      "target_name": "thread_cpu",
      "sources": ["thread_cpu.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none", "sources": []}]]
    }
  ]
}

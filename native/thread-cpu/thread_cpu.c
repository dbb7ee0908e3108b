/*
 * CPU time of the calling thread (src/encoder/cpu-time.ts is its only user).
 *
 * Node 20 has no per-thread CPU clock, and the file it could be read from instead,
 * /proc/thread-self/stat, costs an open, a read and a close each time, in ticks of 10 ms. The
 * encoder reads the clock around every step of every live call (up to eight times a second
 * per call), so this is one clock_gettime(CLOCK_THREAD_CPUTIME_ID), in nanoseconds, returned
 * as microseconds.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <time.h>

static napi_value micros(napi_env env, napi_callback_info info) {
  struct timespec ts;
  napi_value out;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
    napi_throw_error(env, "TALLENNE_THREAD_CPU", "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    return NULL;
  }
  if (napi_create_double(env, (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3, &out) != napi_ok) return NULL;
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"micros", NULL, micros, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

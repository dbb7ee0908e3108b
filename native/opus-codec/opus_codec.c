/*
 * libopus for the encoder threads (src/encoder/opus-native.ts is its only user).
 *
 * The calls that matter run once per 20 ms frame per leg, for every live call, so they
 * allocate nothing: encode() writes the packet into a buffer JavaScript made once and returns
 * its length, and decode() writes PCM into one the same way. An encoder or decoder is libopus'
 * own state and nothing more (no scratch buffers kept beside it), held by a JavaScript
 * external that frees it when collected. Each external is type-tagged, so a decoder handed to
 * encode() (or any other object) is refused instead of being read as an encoder.
 *
 * libopus is compiled from the sources @discordjs/opus ships (native/opus-codec/binding.gyp),
 * with that package's build settings, so the two write the same packets (a unit test checks).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "opus.h"

typedef struct {
  OpusEncoder *enc;
  OpusDecoder *dec;
  int channels;
} Codec;

static const napi_type_tag ENCODER_TAG = {0x74616c6c656e6e65ULL, 0x6f707573656e6301ULL};
static const napi_type_tag DECODER_TAG = {0x74616c6c656e6e65ULL, 0x6f70757364656302ULL};

#define CHECK(call)                                                 \
  do {                                                              \
    if ((call) != napi_ok) {                                        \
      napi_throw_error(env, "TALLENNE_OPUS", "N-API call failed: " #call); \
      return NULL;                                                  \
    }                                                               \
  } while (0)

static napi_value throw_opus(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "libopus %s: %s (%d)", what, opus_strerror(err), err);
  napi_throw_error(env, "TALLENNE_OPUS", msg);
  return NULL;
}

static napi_value int_result(napi_env env, int32_t n) {
  napi_value result;
  CHECK(napi_create_int32(env, n, &result));
  return result;
}

static void finalize(napi_env env, void *data, void *hint) {
  Codec *c = data;
  if (c->enc) opus_encoder_destroy(c->enc);
  if (c->dec) opus_decoder_destroy(c->dec);
  free(c);
}

static int get_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/* The codec behind an external, or NULL (with a TypeError thrown) when it is not one of ours
 * of the wanted kind. */
static Codec *unwrap(napi_env env, napi_value v, const napi_type_tag *tag, const char *kind) {
  bool ok = false;
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_check_object_type_tag(env, v, tag, &ok) != napi_ok || !ok ||
      napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "TALLENNE_OPUS", kind);
    return NULL;
  }
  return data;
}

/* The bytes of a Buffer or any typed array. */
static int bytes_of(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  size_t length, offset;
  void *p;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, &p, &ab, &offset) != napi_ok) return 0;
  size_t size = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: size = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: size = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: size = 8; break;
    default: size = 1;
  }
  *data = p;
  *len = length * size;
  return 1;
}

/* An external holding `enc` or `dec` (whichever is not NULL), tagged as its kind. On failure
 * the state is freed and the error thrown. */
static napi_value wrap(napi_env env, OpusEncoder *enc, OpusDecoder *dec, int channels) {
  Codec *c = calloc(1, sizeof *c);
  if (c != NULL) {
    c->enc = enc;
    c->dec = dec;
    c->channels = channels;
  }
  napi_value ext;
  if (c == NULL || napi_create_external(env, c, finalize, NULL, &ext) != napi_ok) {
    if (c != NULL) free(c);
    if (enc) opus_encoder_destroy(enc);
    if (dec) opus_decoder_destroy(dec);
    return throw_opus(env, enc ? "encoder_create" : "decoder_create", OPUS_ALLOC_FAIL);
  }
  CHECK(napi_type_tag_object(env, ext, enc ? &ENCODER_TAG : &DECODER_TAG));
  return ext;
}

/* createEncoder(rate, channels, application) → encoder */
static napi_value js_create_encoder(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t rate, channels, application;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || !get_int(env, argv[0], &rate) || !get_int(env, argv[1], &channels) || !get_int(env, argv[2], &application)) {
    napi_throw_type_error(env, "TALLENNE_OPUS", "createEncoder(rate, channels, application): three integers");
    return NULL;
  }
  int err = OPUS_OK;
  OpusEncoder *enc = opus_encoder_create(rate, channels, application, &err);
  if (err != OPUS_OK || enc == NULL) return throw_opus(env, "encoder_create", err);
  return wrap(env, enc, NULL, channels);
}

/* encoderSet(encoder, request, value): one of libopus' integer OPUS_SET_* requests. */
static napi_value js_encoder_set(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t request, value;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "TALLENNE_OPUS", "encoderSet(encoder, request, value)");
    return NULL;
  }
  Codec *c = unwrap(env, argv[0], &ENCODER_TAG, "encoderSet: not an Opus encoder");
  if (c == NULL) return NULL;
  if (!get_int(env, argv[1], &request) || !get_int(env, argv[2], &value)) {
    napi_throw_type_error(env, "TALLENNE_OPUS", "encoderSet: request and value must be integers");
    return NULL;
  }
  /* Only the SET requests that take one opus_int32 are passed on: a GET request or any other
   * takes a pointer, which a number from JavaScript must never become. */
  switch (request) {
    case OPUS_SET_APPLICATION_REQUEST: case OPUS_SET_BITRATE_REQUEST: case OPUS_SET_MAX_BANDWIDTH_REQUEST:
    case OPUS_SET_VBR_REQUEST: case OPUS_SET_BANDWIDTH_REQUEST: case OPUS_SET_COMPLEXITY_REQUEST:
    case OPUS_SET_INBAND_FEC_REQUEST: case OPUS_SET_PACKET_LOSS_PERC_REQUEST: case OPUS_SET_DTX_REQUEST:
    case OPUS_SET_VBR_CONSTRAINT_REQUEST: case OPUS_SET_FORCE_CHANNELS_REQUEST: case OPUS_SET_SIGNAL_REQUEST:
    case OPUS_SET_LSB_DEPTH_REQUEST: case OPUS_SET_PREDICTION_DISABLED_REQUEST:
      break;
    default:
      napi_throw_range_error(env, "TALLENNE_OPUS", "encoderSet: not an integer OPUS_SET_* request");
      return NULL;
  }
  int err = opus_encoder_ctl(c->enc, request, (opus_int32)value);
  if (err != OPUS_OK) return throw_opus(env, "encoder_ctl", err);
  return NULL;
}

/* encoderLookahead(encoder) → samples at the encoder's rate (OPUS_GET_LOOKAHEAD). */
static napi_value js_encoder_lookahead(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Codec *c = argc < 1 ? NULL : unwrap(env, argv[0], &ENCODER_TAG, "encoderLookahead: not an Opus encoder");
  if (c == NULL) {
    if (argc < 1) napi_throw_type_error(env, "TALLENNE_OPUS", "encoderLookahead(encoder)");
    return NULL;
  }
  opus_int32 lookahead = 0;
  int err = opus_encoder_ctl(c->enc, OPUS_GET_LOOKAHEAD(&lookahead));
  if (err != OPUS_OK) return throw_opus(env, "encoder_ctl", err);
  return int_result(env, lookahead);
}

/* The arguments of encode() and decode(): a codec of the kind `tag` names, then two typed
 * arrays (input, output). NULL, with the error thrown, when they are not that. */
static Codec *codec_and_buffers(napi_env env, napi_callback_info info, const napi_type_tag *tag, const char *usage,
                                const char *not_kind, uint8_t **in, size_t *in_len, uint8_t **out, size_t *out_len) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, "TALLENNE_OPUS", usage);
    return NULL;
  }
  Codec *c = unwrap(env, argv[0], tag, not_kind);
  if (c == NULL) return NULL;
  if (!bytes_of(env, argv[1], in, in_len) || !bytes_of(env, argv[2], out, out_len) || *in_len > INT32_MAX) {
    napi_throw_type_error(env, "TALLENNE_OPUS", usage);
    return NULL;
  }
  if (*out_len > INT32_MAX) *out_len = INT32_MAX;
  return c;
}

/* encode(encoder, pcm, out) → bytes written to out. pcm: one frame of Int16 interleaved
 * samples (its length sets the frame size; libopus refuses a size that is not an Opus frame). */
static napi_value js_encode(napi_env env, napi_callback_info info) {
  uint8_t *pcm, *out;
  size_t pcm_len, out_len;
  Codec *c = codec_and_buffers(env, info, &ENCODER_TAG, "encode(encoder, pcm, out): pcm and out typed arrays",
                               "encode: not an Opus encoder", &pcm, &pcm_len, &out, &out_len);
  if (c == NULL) return NULL;
  size_t frame_bytes = 2 * (size_t)c->channels;
  if (pcm_len == 0 || pcm_len % frame_bytes != 0 || ((uintptr_t)pcm & 1) != 0) {
    napi_throw_range_error(env, "TALLENNE_OPUS", "encode: pcm must be whole, aligned Int16 frames");
    return NULL;
  }
  opus_int32 n = opus_encode(c->enc, (const opus_int16 *)pcm, (int)(pcm_len / frame_bytes), out, (opus_int32)out_len);
  if (n < 0) return throw_opus(env, "encode", n);
  return int_result(env, n);
}

/* createDecoder(rate, channels) → decoder */
static napi_value js_create_decoder(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t rate, channels;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !get_int(env, argv[0], &rate) || !get_int(env, argv[1], &channels)) {
    napi_throw_type_error(env, "TALLENNE_OPUS", "createDecoder(rate, channels): two integers");
    return NULL;
  }
  int err = OPUS_OK;
  OpusDecoder *dec = opus_decoder_create(rate, channels, &err);
  if (err != OPUS_OK || dec == NULL) return throw_opus(env, "decoder_create", err);
  return wrap(env, NULL, dec, channels);
}

/* decode(decoder, packet, out) → samples per channel written to out (Int16 interleaved).
 * An empty packet asks for concealment of one lost packet the size of out. */
static napi_value js_decode(napi_env env, napi_callback_info info) {
  uint8_t *packet, *out;
  size_t packet_len, out_len;
  Codec *c = codec_and_buffers(env, info, &DECODER_TAG, "decode(decoder, packet, out): packet and out typed arrays",
                               "decode: not an Opus decoder", &packet, &packet_len, &out, &out_len);
  if (c == NULL) return NULL;
  size_t frame_bytes = 2 * (size_t)c->channels;
  if (((uintptr_t)out & 1) != 0 || out_len < frame_bytes) {
    napi_throw_range_error(env, "TALLENNE_OPUS", "decode: out must be aligned Int16 room for at least one sample");
    return NULL;
  }
  int n = opus_decode(c->dec, packet_len ? packet : NULL, (opus_int32)packet_len, (opus_int16 *)out, (int)(out_len / frame_bytes), 0);
  if (n < 0) return throw_opus(env, "decode", n);
  return int_result(env, n);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"createEncoder", NULL, js_create_encoder, NULL, NULL, NULL, napi_enumerable, NULL},
    {"encoderSet", NULL, js_encoder_set, NULL, NULL, NULL, napi_enumerable, NULL},
    {"encoderLookahead", NULL, js_encoder_lookahead, NULL, NULL, NULL, napi_enumerable, NULL},
    {"encode", NULL, js_encode, NULL, NULL, NULL, napi_enumerable, NULL},
    {"createDecoder", NULL, js_create_decoder, NULL, NULL, NULL, napi_enumerable, NULL},
    {"decode", NULL, js_decode, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  napi_value version;
  CHECK(napi_create_string_utf8(env, opus_get_version_string(), NAPI_AUTO_LENGTH, &version));
  CHECK(napi_set_named_property(env, exports, "version", version));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

/*
 * page_cache: Node.js has no posix_fadvise, and a storage node that writes and reads objects
 * through the page cache without advice fills the host's memory with pages it will not touch
 * again; once memory is full, every new page it writes costs reclaim. This addon exposes the one
 * call Swift's drop_buffer_cache makes: posix_fadvise(fd, offset, length, POSIX_FADV_DONTNEED).
 *
 * dropPageCache(fd, offset, length) -> 0, or the error number posix_fadvise returned (the advice is
 * only advice: callers ignore failures). length 0 means "to the end of the file". Synchronous:
 * dropping clean pages costs microseconds per MiB (see storage-node/diskfile/page-cache.ts).
 */
#define NAPI_VERSION 8
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <node_api.h>

static napi_value drop_page_cache(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int64_t offset;
  int64_t length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || fd < 0 || offset < 0 || length < 0) {
    napi_throw_type_error(env, NULL, "dropPageCache(fd, offset, length) takes three non-negative integers");
    return NULL;
  }
  int error = posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_DONTNEED);
  napi_value result;
  napi_create_int32(env, error, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value function;
  if (napi_create_function(env, "dropPageCache", NAPI_AUTO_LENGTH, drop_page_cache, NULL, &function) != napi_ok ||
      napi_set_named_property(env, exports, "dropPageCache", function) != napi_ok) {
    return NULL;
  }
  return exports;
}

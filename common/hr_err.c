#include "hr_err.h"

#include <string.h>

const char *hr_strerror(int err)
{
    switch (err) {
#define HR_ERR_MSG_(name, val, msg)                                                                \
    case val:                                                                                      \
        return msg;
        HR_ERRNO_MAP(HR_ERR_MSG_)
#undef HR_ERR_MSG_
    case 0:
        return "success";
    default:
        return err < 0 ? strerror(-err) : "unknown error";
    }
}

const char *hr_err_name(int err)
{
    switch (err) {
#define HR_ERR_NAME_(name, val, msg)                                                               \
    case val:                                                                                      \
        return #name;
        HR_ERRNO_MAP(HR_ERR_NAME_)
#undef HR_ERR_NAME_
    case 0:
        return "OK";
    default: {
        const char *n = err < 0 ? strerrorname_np(-err) : NULL;
        return n ? n : "UNKNOWN";
    }
    }
}

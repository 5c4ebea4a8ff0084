/* Project-wide error codes. Functions return 0 on success or a negative code
 * from HR_ERRNO_MAP; system errors are returned as -(errno). */
#ifndef HR_ERR_H
#define HR_ERR_H

#include <errno.h>

/* X(name, value, message). Project codes live below -10000 so they never
 * collide with -(errno). */
#define HR_ERRNO_MAP(X)                                                                            \
    X(HR_EPARSE, -10001, "malformed data")                                                         \
    X(HR_ETRUNC, -10002, "truncated data")                                                         \
    X(HR_ETOOBIG, -10003, "length exceeds configured limit")                                       \
    X(HR_EUNSUP, -10004, "unsupported feature")                                                    \
    X(HR_ECONFIG, -10005, "invalid configuration")                                                 \
    X(HR_EPROTO, -10006, "protocol violation")                                                     \
    X(HR_EREDIS, -10007, "index (redis) failure")                                                  \
    X(HR_ESTATE, -10008, "operation not valid in current state")                                   \
    X(HR_EMISSING, -10009, "required attribute missing")                                           \
    X(HR_ECHARSET, -10010, "character set conversion failed")                                      \
    X(HR_ENOTFOUND, -10011, "not found")                                                           \
    X(HR_EMISMATCH, -10012, "data does not match its declaration")                                 \
    X(HR_EFORBIDDEN, -10013, "not authorized")                                                     \
    X(HR_ESIG, -10014, "signature does not verify")                                                \
    X(HR_ECERT, -10015, "certificate not valid or not trusted")                                    \
    X(HR_EDIGEST, -10016, "content does not match its digest")

enum {
#define HR_ERR_ENUM_(name, val, msg) name = (val),
    HR_ERRNO_MAP(HR_ERR_ENUM_)
#undef HR_ERR_ENUM_
};

/* Static message for any code (project or -(errno)); never NULL. */
const char *hr_strerror(int err);
/* Static symbolic name ("HR_EPARSE", "ENOENT", ...); never NULL. */
const char *hr_err_name(int err);

#endif

#include "va.h"

#include <stdarg.h>
#include <stdio.h>

void va__deny(va_denial *d, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    d->status = status;
    d->code = code;
    va_start(ap, fmt);
    vsnprintf(d->detail, sizeof(d->detail), fmt, ap);
    va_end(ap);
}

json_t *va__jstr(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("");
}

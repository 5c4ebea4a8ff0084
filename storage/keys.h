/* Index key components (docs/index-schema.md, "Key components"). Values that
 * come from senders (Patient ID, Issuer, accession, modality, hospital ids)
 * are percent-encoded before they become part of a Redis key, so any byte in
 * them (':', '|', '{', '}', spaces, non-ASCII) can neither make two different
 * values share a key, nor reach into another key type, nor change a key's
 * Redis Cluster hash slot. UIDs are validated (digits and dots) and used as
 * they are. Pure functions. */
#ifndef STO_KEYS_H
#define STO_KEYS_H

#include "../dicom/dcm_attrs.h"

#include <stddef.h>

/* Largest escaped form of one LO value (every byte as %XX) plus NUL. */
#define STO_KEY_PART_MAX (3 * DCM_LO_MAX + 1)
/* Patient key "<issuer>|<patient id>", both escaped, plus NUL. */
#define STO_PKEY_MAX (2 * 3 * DCM_LO_MAX + 2)

/* Writes in (NUL-terminated) into out with every byte outside [A-Za-z0-9._-]
 * as %XX (upper-case hex). Injective: different inputs give different
 * outputs, and the output never holds ':', '|', '{', '}' or spaces. 0, or
 * HR_ETOOBIG when out (cap bytes, NUL included) is too small. */
int sto_key_part(const char *in, char *out, size_t cap);

/* The patient key of an instance: "<issuer>|<patient id>" escaped, issuer =
 * Issuer of Patient ID, or default_issuer (the study's owning hospital) when
 * absent; "" when the instance has no Patient ID. out must hold
 * STO_PKEY_MAX bytes. 0 (always fits). */
int sto_patient_key(const dcm_attrs *a, const char *default_issuer, char *out);

#endif

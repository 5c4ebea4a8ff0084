/* Regional persons (PIX-like, decision 0027): each hospital's patient
 * (issuer, patient id) -> one person, linked through the national ID number
 * (身份证) or the health card number. A number is never stored in clear:
 * only HMAC-SHA256(key, "<id type>:<normalized number>") in hex, under the
 * key <data_dir>/keys/person-id.key that huren serve creates at its first
 * start and refuses to run without once data exists.
 *
 * Person id: "p" + the first 24 hex digits of the HMAC of the identifier that
 * created the person (stable: the same number under the same key always
 * names the same person; not reversible without the key).
 *
 * Redis keys (docs/index-schema.md, "Persons"); {P} = the person id:
 *   hr:person:{P}              hash: id created_ms updated_ms national_id health_card
 *                              (HMAC hex of each identifier the person has)
 *   hr:person:{P}:pts          set: patient keys "<issuer>|<id>" (escaped, storage/keys.h)
 *   hr:person:{P}:st           zset: Study Instance UIDs, score = study date (YYYYMMDD)
 *   hr:pix:<id type>:<hmac>    string: person id (lookup by number)
 *   hr:pix:pt:<patient key>    string: person id (lookup by patient)
 *   hr:pix:keycheck            string: 16 hex of HMAC(key, "huren person-id key check")
 * The lookup keys are on other slots than the person's: they are written
 * first, with SET NX (idempotent), then the person's keys in one script.
 *
 * Redis functions are synchronous (hiredis): thread pool or CLI. Codes:
 * HR_ESTATE (no key loaded), -EINVAL (malformed number or id), -EEXIST (the
 * patient, or the person's identifier of that type, is linked to another
 * person), HR_ETOOBIG (the person has RPT_PERSON_PTS_MAX patients),
 * HR_ENOTFOUND, HR_EREDIS, -ENOMEM. */
#ifndef RPT_PERSON_H
#define RPT_PERSON_H

#include "pix_config.h"
#include "../dicom/dcm_attrs.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

#define RPT_PERSON_ID_LEN       25   /* "p" + 24 lower-case hex digits */
#define RPT_PERSON_PTS_MAX      64   /* patient keys of one person */
#define RPT_PERSON_LINK_STUDIES 1000 /* newest studies of a patient copied by one link */
#define RPT_ID_NUMBER_MAX       40   /* a normalized number, NUL included */
#define RPT_PIX_KEY_FILE        "keys/person-id.key" /* under data_dir */

/* 1 when s is 17 digits followed by the ISO 7064 MOD 11-2 check character
 * of GB 11643 (0-9 or upper-case X). */
int rpt_national_id_valid(const char *s);
/* The normalized number of in (ASCII spaces around it removed; national ID:
 * 'x' -> 'X', then rpt_national_id_valid; health card: letters upper-cased,
 * 4-32 of [A-Z0-9-]) into out (cap bytes). 0 or -EINVAL. */
int rpt_id_normalize(enum rpt_id_type t, const char *in, char *out, size_t cap);
/* HMAC-SHA256(p->key, "<id type name>:<norm>") as 64 lower-case hex digits
 * and a NUL. 0, HR_ESTATE (no key), -EIO (OpenSSL). */
int rpt_id_hmac(const pix_config *p, enum rpt_id_type t, const char *norm, char hex[65]);
/* The person id an identifier with this HMAC creates. */
void rpt_person_id_of(const char *hmac_hex, char out[RPT_PERSON_ID_LEN + 1]);
/* 1 when s is a well-formed person id. */
int rpt_person_id_valid(const char *s);
/* The patient key "<issuer>|<patient id>" (escaped like storage/keys.h) of
 * a hospital's patient; issuer "" = the hospital. out: STO_PKEY_MAX bytes.
 * 0, or -EINVAL (patient_id empty, or a part longer than a DICOM LO). */
int rpt_patient_key(const char *hospital, const char *issuer, const char *patient_id, char *out);

/* ---- the key (huren serve, before any port opens) ---- */

/* Reads <data_dir>/keys/person-id.key (exactly PIX_KEY_LEN bytes) into key.
 * When it is absent and may_create, makes one (random bytes; written to a
 * temp file 0600, fsync, rename, fsync of the directory; keys/ made 0700)
 * and sets *created. 0; HR_ENOTFOUND (absent, !may_create); HR_ETOOBIG or
 * HR_ETRUNC (a file of another size); -errno; -EIO (random generator). */
int rpt_person_key_open(const char *data_dir, int may_create, unsigned char key[PIX_KEY_LEN],
                        int *created);
/* Compares the key with the one the index was linked with (hr:pix:keycheck),
 * recording it when the index has none. 0, HR_EMISMATCH (another key),
 * HR_EREDIS. */
int rpt_person_key_check(redisContext *c, const unsigned char key[PIX_KEY_LEN]);
/* *yes = 1 when the index holds anything a lost key would orphan or that
 * shows data was received: studies, patients, persons' key check. 0 or
 * HR_EREDIS. */
int rpt_person_index_has_data(redisContext *c, int *yes);

/* ---- links ---- */

typedef struct rpt_link_result {
    char person[RPT_PERSON_ID_LEN + 1];
    int created;             /* the person was created by this link */
    int linked;              /* the patient key was not linked before */
    long long studies_added; /* the patient's studies newly added to the person */
} rpt_link_result;

/* Links the patient key to the person of the identifier (creating it when
 * neither is known), and adds the patient's newest RPT_PERSON_LINK_STUDIES
 * studies (hr:pt:<key>:st) to the person's. Idempotent. hmac: of the
 * identifier (rpt_id_hmac). 0, -EEXIST, HR_ETOOBIG, HR_EREDIS, -EINVAL. */
int rpt_person_link(redisContext *c, const char *pkey, enum rpt_id_type t, const char *hmac,
                    long long now_ms, rpt_link_result *out);
/* The person of an identifier (HMAC) or of a patient key. HR_ENOTFOUND. */
int rpt_person_by_id(redisContext *c, enum rpt_id_type t, const char *hmac,
                     char person[RPT_PERSON_ID_LEN + 1]);
int rpt_person_by_patient(redisContext *c, const char *pkey, char person[RPT_PERSON_ID_LEN + 1]);

/* What an arriving object did to persons. */
typedef struct rpt_arrival_result {
    int number_found;                   /* a configured place held a number */
    int invalid;                        /* ... that was malformed (not linked) */
    int linked;                         /* the patient was newly linked */
    char person[RPT_PERSON_ID_LEN + 1]; /* "" when the patient has no person */
} rpt_arrival_result;

/* At ingest, after the index commit: when the sender's hospital (cfg
 * persons.sources) puts a number in the object, links the patient (pkey:
 * its patient key, "" = none) through it; and when the patient has a person,
 * adds the study (score = its date) to the person's studies. Cheap when the
 * link exists (two pipelined reads and a ZADD). 0 (also when there is
 * nothing to link), or the codes of rpt_person_link. */
int rpt_person_arrive(redisContext *c, const hr_config *cfg, const dcm_attrs *a,
                      const char *source_hospital, const char *pkey, long long now_ms,
                      rpt_arrival_result *out);

/* The person's newest studies (at most max, newest study date first) into
 * studies[max]. *n = how many. 0, HR_EREDIS. */
int rpt_person_studies(redisContext *c, const char *person, int max, char (*studies)[HR_UID_MAX],
                       int *n);

/* The person as JSON (a new reference in *out): {person, created_ms,
 * identifiers: {national_id: bool, health_card: bool}, patients: [{key, id,
 * issuer, name, birth_date, sex}], studies: [{study, date, hospital,
 * accession, description}] (newest max_studies)}. No number appears, only
 * whether the person has one. 0, HR_ENOTFOUND, HR_EREDIS, -ENOMEM. */
int rpt_person_json(redisContext *c, const char *person, int max_studies, json_t **out);

#endif

/* dicom.* and hl7.*: the listeners gateway/ runs.
 *
 *   key                           default              rule
 *   dicom.listen                  "0.0.0.0"            IPv4 or IPv6 literal
 *   dicom.port                    11112                1..65535
 *   dicom.ae_title                "HUREN"              AE title, no hospital's AE title
 *   dicom.hospital                "county"             one of hospitals[].id
 *   dicom.max_associations        64                   1..10000
 *   dicom.max_per_address         16                   1..10000
 *   dicom.reserved_associations   max_associations/8   0..max_associations; derived: at least 1
 *   dicom.max_pdu                 262144               4096..16 MiB
 *   dicom.idle_timeout_s          120                  1..86400
 *   dicom.artim_timeout_s         30                   1..3600
 *   dicom.max_object_bytes        8 GiB                1024..4 TiB
 *   dicom.accept_unknown_storage  true                 true | false
 *   hl7.enabled                   false                true | false
 *   hl7.listen                    "0.0.0.0"            IPv4 or IPv6 literal
 *   hl7.port                      2575                 1..65535
 *   hl7.max_message_bytes         1 MiB                1024..64 MiB
 *   hl7.idle_timeout_s            300                  1..86400
 *   hl7.max_connections           256                  1..10000
 *   hl7.facility                  dicom.hospital       "" or 1-64 characters without HL7 delimiters
 *
 * Meaning: docs/configuration.md. */
#include "gw_config.h"

#include <stdio.h>
#include <string.h>

static const hr_cfg_key k_dicom_keys[] = {
    HR_CFG_KEY_ADDR("listen", dicom.listen.host),
    HR_CFG_KEY_INT("port", dicom.listen.port, 1, 65535),
    HR_CFG_KEY_VALID("ae_title", dicom.ae_title, hr_ae_title_valid,
                     "must be 1-16 printable ASCII characters"),
    HR_CFG_KEY_STR("hospital", dicom.hospital, 0),
    HR_CFG_KEY_INT("max_associations", dicom.max_associations, 1, 10000),
    HR_CFG_KEY_INT("max_per_address", dicom.max_per_address, 1, 10000),
    HR_CFG_KEY_INT("reserved_associations", dicom.reserved_associations, 0, 10000),
    HR_CFG_KEY_INT("max_pdu", dicom.max_pdu, 4096, 16 * 1024 * 1024),
    HR_CFG_KEY_INT("idle_timeout_s", dicom.idle_timeout_s, 1, 86400),
    HR_CFG_KEY_INT("artim_timeout_s", dicom.artim_timeout_s, 1, 3600),
    HR_CFG_KEY_INT("max_object_bytes", dicom.max_object_bytes, 1024, (long long)1 << 42),
    HR_CFG_KEY_BOOL("accept_unknown_storage", dicom.accept_unknown_storage),
    HR_CFG_KEY_END,
};

static void dicom_init(hr_config *c)
{
    c->dicom.reserved_associations = -1; /* derived from max_associations */
}

/* The reserve of decision 0012, and the hub's identity among the hospitals. */
static int dicom_validate(hr_config *c, struct json_t *user, char *err, size_t ecap)
{
    for (size_t i = 0; i < c->n_hospitals; i++)
        for (size_t a = 0; a < c->hospitals[i].n_ae; a++)
            if (strcmp(c->hospitals[i].ae_titles[a], c->dicom.ae_title) == 0)
                return hr_cfg_fail(err, ecap,
                                   "hospitals[%zu].ae_titles: \"%s\" is the hub's own "
                                   "dicom.ae_title",
                                   i, c->dicom.ae_title);
    if (c->dicom.reserved_associations < 0) {
        c->dicom.reserved_associations = c->dicom.max_associations / 8;
        if (c->dicom.reserved_associations < 1)
            c->dicom.reserved_associations = 1;
    } else if (c->dicom.reserved_associations > c->dicom.max_associations) {
        return hr_cfg_fail(err, ecap,
                           "dicom.reserved_associations: %d is more than "
                           "dicom.max_associations (%d)",
                           c->dicom.reserved_associations, c->dicom.max_associations);
    }
    if (!hr_config_hospital(c, c->dicom.hospital))
        return hr_cfg_fail(err, ecap, "dicom.hospital: \"%s\" is not one of hospitals[].id",
                           c->dicom.hospital);
    return 0;
}

const hr_config_section gw_config_dicom = {
    .name = "dicom",
    .defaults = "{\"listen\": \"0.0.0.0\", \"port\": 11112, \"ae_title\": \"HUREN\","
                " \"hospital\": \"county\", \"max_associations\": 64, \"max_per_address\": 16,"
                " \"max_pdu\": 262144, \"idle_timeout_s\": 120, \"artim_timeout_s\": 30,"
                " \"max_object_bytes\": 8589934592, \"accept_unknown_storage\": true}",
    .keys = k_dicom_keys,
    .init = dicom_init,
    .validate = dicom_validate,
};

static const hr_cfg_key k_hl7_keys[] = {
    HR_CFG_KEY_BOOL("enabled", hl7.enabled),
    HR_CFG_KEY_ADDR("listen", hl7.host),
    HR_CFG_KEY_INT("port", hl7.port, 1, 65535),
    HR_CFG_KEY_INT("max_message_bytes", hl7.max_message_bytes, 1024, 64 * 1024 * 1024),
    HR_CFG_KEY_INT("idle_timeout_s", hl7.idle_timeout_s, 1, 86400),
    HR_CFG_KEY_INT("max_connections", hl7.max_connections, 1, 10000),
    HR_CFG_KEY_STR("facility", hl7.facility, HR_CFG_EMPTY_OK),
    HR_CFG_KEY_END,
};

/* The hub's facility (MSH-4 of the ACKs): dicom.hospital unless set; no HL7
 * delimiter or control character, since it is written into MSH unescaped. */
static int hl7_validate(hr_config *c, struct json_t *user, char *err, size_t ecap)
{
    if (!c->hl7.facility[0])
        snprintf(c->hl7.facility, sizeof(c->hl7.facility), "%s", c->dicom.hospital);
    for (const char *p = c->hl7.facility; *p; p++)
        if (strchr("|^~\\&", *p) || (unsigned char)*p < 0x20 || *p == 0x7f)
            return hr_cfg_fail(err, ecap,
                               "hl7.facility: \"%s\" holds an HL7 delimiter or control character",
                               c->hl7.facility);
    return 0;
}

const hr_config_section gw_config_hl7 = {
    .name = "hl7",
    .defaults = "{\"enabled\": false, \"listen\": \"0.0.0.0\", \"port\": 2575,"
                " \"max_message_bytes\": 1048576,"
                " \"idle_timeout_s\": 300, \"max_connections\": 256, \"facility\": \"\"}",
    .keys = k_hl7_keys,
    .validate = hl7_validate,
};

/* HL7 v2.5.1 for report delivery (decision 0026): the ORU^R01 that carries
 * a signed report version to the source hospital, and the reading of the
 * ACK it gets back. Pure functions of their inputs (no sockets, no Redis):
 * tests and fuzzers call them directly; gateway/ frames and sends.
 *
 * Message layout (segments end with CR):
 *   MSH|^~\&|HUREN|<hub hospital>|<receiving app>|<receiving facility>|<now>||
 *       ORU^R01^ORU_R01|<control id>|P|2.5.1|||||CHN|UNICODE UTF-8
 *   PID|1||<patient id>^^^<issuer>||<name>[~<name group 2>...]||<birth date>|<sex>
 *   ORC|RE||<filler order number>
 *   OBR|1||<filler order number>|^<procedure>|||<study date>|...|<report id>/<version>
 *       (OBR-20)|...|<signed at> (OBR-22)|<section> (OBR-24)|<status> (OBR-25)|...|
 *       <final signer> (OBR-32)|<other signers> (OBR-33)
 *   NTE|<i>|L|<signer: function, name (user), role, center, time>   one per signer
 *   OBX|<n>|TX|121071^Finding^DCM|1|<line>||||||<status>        one per line of findings
 *   OBX|<n>|TX|121073^Impression^DCM|2|<line>||||||<status>     one per line of impression
 *   OBX|<n>|RP|REPORT^Signed report (JWS)^99HUREN|3|<url>^HUREN^AP^jose||||||<status>
 * The filler order number is the accession number, or the report id when the
 * exam has none. Status (OBR-25, Table 0123 / OBX-11, Table 0085): final F/F;
 * amended and corrected C/C; entered-in-error X/W. */
#ifndef RPT_ORU_H
#define RPT_ORU_H

#include "../common/hr_buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RPT_HL7_CONTROL_ID_MAX 21         /* MSH-10: 20 characters + NUL */
#define RPT_ORU_MAX            (1u << 20) /* bytes of one built message, at most */

/* Appends s to out with the HL7 escape sequences of the default encoding
 * characters: | \F\, ^ \S\, & \T\, ~ \R\, \ \E\; other control characters
 * (CR, LF, TAB, ...) as \Xhh\. UTF-8 bytes pass unchanged. 0, -ENOMEM,
 * HR_ETOOBIG (out's cap). */
int rpt_hl7_escape(const char *s, hr_buf *out);

/* What the message needs besides the signed payload. Strings are borrowed. */
typedef struct rpt_oru_params {
    const char *sending_facility;      /* MSH-4: the hub's hospital id */
    const char *receiving_application; /* MSH-5, "" when none */
    const char *receiving_facility;    /* MSH-6, "" when none */
    const char *control_id;            /* MSH-10, 1..20 printable ASCII, no delimiter */
    long long now_ms;                  /* MSH-7 */
    const char *report_url;            /* the RP OBX pointer; NULL or "": no RP OBX */
    const char *diag_section;          /* OBR-24 (Table 0074: RAD, EC, SP, LAB); "" none */
} rpt_oru_params;

/* Builds the ORU^R01 of a signed version from its payload (decision 0022
 * schema) into out (appended; at most RPT_ORU_MAX bytes). 0, -EINVAL (the
 * payload lacks report.id, report.version or report.status, a status that
 * is not delivered, or a bad control id), -ENOMEM, HR_ETOOBIG. */
int rpt_oru_build(const json_t *payload, const rpt_oru_params *p, hr_buf *out);

/* OBR-25 and OBX-11 of a FHIR status name ("final", "amended", "corrected",
 * "entered-in-error"); NULL for any other. */
const char *rpt_oru_obr_status(const char *status);
const char *rpt_oru_obx_status(const char *status);

/* What an acknowledgement says. Strings NUL-terminated, cut to their caps. */
typedef struct rpt_hl7_ack {
    char code[3];                                /* MSA-1: AA AE AR CA CE CR */
    char control_id[RPT_HL7_CONTROL_ID_MAX * 4]; /* MSA-2: the message acknowledged */
    char text[512];                              /* MSA-3 and the ERR segments, unescaped loosely */
} rpt_hl7_ack;

/* Reads an ACK (any encoding characters its MSH declares; segments end
 * with CR, LF tolerated). 0 with *out filled; HR_EPARSE when it is not an
 * HL7 message with an MSA segment. */
int rpt_hl7_ack_parse(const uint8_t *msg, size_t len, rpt_hl7_ack *out);

/* 1 when ack accepts the message with control id: MSA-1 AA or CA and MSA-2
 * equal to it. */
int rpt_hl7_ack_ok(const rpt_hl7_ack *ack, const char *control_id);

#endif

/* A compact built-in data dictionary (tag -> VR, no names) for implicit VR
 * parsing, and VR properties. The table holds the public tags (current and
 * retired) of groups 0008 0010 0018 0020 0028 0032 0038 0040 0054 0088 3006
 * 300A 300C 300E 7FE0 FFFA FFFC, the waveform groups 003A and 5400 with
 * (0070,0006), and the 60xx overlay group (about 2830
 * entries, 8 bytes each), taken from DCMTK 3.6.7's dicom.dic. Ambiguous VRs
 * resolve to one choice: "US or SS" -> US, "OB or OW" -> OW,
 * "US or OW" -> OW. */
#ifndef DCM_DICT_H
#define DCM_DICT_H

#include <stddef.h>
#include <stdint.h>

#define DCM_TAG(g, e)      (((uint32_t)(g) << 16) | (uint32_t)(e))
#define DCM_TAG_GROUP(t)   ((uint16_t)((t) >> 16))
#define DCM_TAG_ELEMENT(t) ((uint16_t)((t)&0xffffu))

#define DCM_TAG_ITEM       0xFFFEE000u
#define DCM_TAG_ITEM_DELIM 0xFFFEE00Du
#define DCM_TAG_SEQ_DELIM  0xFFFEE0DDu
#define DCM_TAG_CHARSET    0x00080005u
#define DCM_TAG_PIXEL_DATA 0x7FE00010u

/* The dictionary VR of tag (2 letters + NUL, static storage), or NULL when
 * the tag is not in the table. Overlay groups 6002..601E map to 6000. */
const char *dcm_dict_lookup(uint32_t tag);
/* VR to use for tag in implicit VR: the dictionary VR; "UL" for group length
 * (gggg,0000); "LO" for private creators (odd group, element 0010..00FF);
 * else "UN". Never NULL, static storage. */
const char *dcm_dict_vr(uint32_t tag);

/* 1 when vr (2 chars, need not be NUL-terminated) is one of the 34 VRs of
 * PS3.5 6.2, else 0. */
int dcm_vr_known(const char *vr);
/* 1 for VRs with reserved bytes + 4-byte length in explicit VR (OB OD OF OL OV
 * OW SQ SV UC UN UR UT UV), else 0. */
int dcm_vr_long_length(const char *vr);
/* 1 for character-string VRs (AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI
 * UR UT), else 0. */
int dcm_vr_is_string(const char *vr);
/* 1 for string VRs whose value may hold several values separated by '\'
 * (all string VRs except LT ST UR UT). */
int dcm_vr_multi_valued(const char *vr);
/* Byte-order unit of a binary VR: 2 (US SS OW AT), 4 (UL SL FL OF OL),
 * 8 (FD OD SV UV OV), else 1 (no swapping: OB UN strings SQ). */
size_t dcm_vr_swap_unit(const char *vr);

#endif

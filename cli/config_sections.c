/* The module sections of the configuration, in reading order (decision
 * 0021). common/ reads the file but may not include the modules; this table,
 * above them all, names each module's sections. It is linked into huren_core
 * (CMakeLists.txt) so that every program and test loads the same file. A new
 * section: declare it in <module>/<prefix>_config.h and list it here. */
#include "../gateway/gw_config.h"
#include "../reports/pix_config.h"
#include "../reports/rec_config.h"
#include "../reports/rpt_config.h"
#include "../reports/alr_config.h"
#include "../reports/dlv_config.h"
#include "../reports/lab_config.h"
#include "../reports/shr_config.h"
#include "../storage/sto_config.h"
#include "../viewer-api/api_config.h"
#include "../worklist/wl_config.h"

const hr_config_section *const hr_config_sections[] = {
    &sto_config_redis,
    &gw_config_dicom,
    &api_config_http,
    &api_config_auth,
    &api_config_web,
    &gw_config_hl7,
    &wl_config_centers,
    &wl_config_routing,
    &wl_config_worklist,
    &rpt_config_reports,
    &pix_config_persons,
    &rec_config_recognition,
    &rpt_dlv_config_section,
    &shr_config_share,
    &rpt_alr_config_section,
    &lab_config_lab,
    NULL,
};

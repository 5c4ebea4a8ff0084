// Every page module of the application. Each registers its route, roles and
// navigation label when imported (see web/app/README.md). Add your import on
// its own line under your area's comment so that branches merge cleanly.

// shell (login, account)
import './login.js';
import './account.js';

// township technician
import './township.js';

// county reader and auditor: add imports below
import './reader.js';
import './auditor.js';

// receiving doctor (recognition): add imports below
import './recognition.js';

// office and admin (statistics, audit, users): add imports below
import './office.js';
import './audit.js';
import './users.js';

// patient share: add imports below
import './share.js';

// critical values (危急值 register; the banner is in the shell)
import './alerts.js';

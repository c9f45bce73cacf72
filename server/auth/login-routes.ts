import type { AuthContext, AuthHandler, AuthRequest, AuthResponse, AuthRoute } from './auth-exchange';
import { authorize } from './authorize';
import { decideConsent, showConsent } from './consent';
import { createLaunch } from './ehr-launch';
import { login, loginTotp } from './login';
import { errorPage } from './pages/error-page';
import { pickPatient, showPatientPicker } from './patient-picker';
import { pickEncounter, showEncounterPicker } from './encounter-picker';
import { PageError } from './pending-authorization';

/** A browser-facing handler: a PageError becomes an HTML error page (never JSON, never a redirect). */
function page(handler: AuthHandler): AuthHandler {
  return async (req: AuthRequest, ctx: AuthContext): Promise<AuthResponse> => {
    try {
      return await handler(req, ctx);
    } catch (err) {
      if (err instanceof PageError) return { status: err.status, html: errorPage(err.title, err.message) };
      throw err;
    }
  };
}

/**
 * The browser side of the SMART App Launch authorization server: authorize (GET and
 * POST), login (+ TOTP), patient picker, consent; and the EHR's launch-context endpoint.
 * The flow and the URLs: docs/smart-launch.md.
 */
export function loginRoutes(): AuthRoute[] {
  return [
    { method: 'GET', path: '/auth/authorize', handler: page(authorize) },
    { method: 'POST', path: '/auth/authorize', handler: page(authorize) },
    { method: 'POST', path: '/auth/login', handler: page(login) },
    { method: 'POST', path: '/auth/login/totp', handler: page(loginTotp) },
    { method: 'GET', path: '/auth/patient-picker', handler: page(showPatientPicker) },
    { method: 'POST', path: '/auth/patient-picker', handler: page(pickPatient) },
    { method: 'GET', path: '/auth/encounter-picker', handler: page(showEncounterPicker) },
    { method: 'POST', path: '/auth/encounter-picker', handler: page(pickEncounter) },
    { method: 'GET', path: '/auth/consent', handler: page(showConsent) },
    { method: 'POST', path: '/auth/consent', handler: page(decideConsent) },
    { method: 'POST', path: '/auth/launch', handler: createLaunch },
  ];
}

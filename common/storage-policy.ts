/**
 * Nebula's one storage policy, as Swift names a cluster's policy 0 when swift.conf declares none
 * (`Policy-0`). /info lists it, containers answer its name as X-Storage-Policy, and accounts give
 * their usage per policy under it (X-Account-Storage-Policy-Policy-0-*).
 */
export const DEFAULT_POLICY = { index: 0, name: 'Policy-0' } as const;

/** The name of the policy with this index (X-Backend-Storage-Policy-Index), if Nebula has it. */
export function policyName(index: string | number | undefined): string | undefined {
  return index === undefined || Number(index) === DEFAULT_POLICY.index ? DEFAULT_POLICY.name : undefined;
}

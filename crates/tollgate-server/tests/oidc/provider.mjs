// A real OpenID provider (panva's certified oidc-provider) for the dashboard's sign-in
// tests, on a free loopback port. Its issuer is http://localhost:PORT, so that Tollgate on
// 127.0.0.1 is another site to the browser, as a real provider is.
//
//   OIDC_REDIRECT_URI=http://127.0.0.1:PORT/ui/auth/oidc/callback \
//   OIDC_CLIENT_SECRET=… node provider.mjs
//
// It prints "oidc provider listening on http://localhost:PORT" once it serves. Its sign-in
// is oidc-provider's own login and consent pages, which take any password. The accounts:
//   alice     groups [tollgate-admins], email alice@example.test
//   victor    groups [tollgate-viewers], email victor@example.test
//   nobody    groups [guests]
//   stranger  groups [tollgate-admins], but its ID token is made out to another client
//             (aud "another-client"), signed with this provider's own key: what a relying
//             party must refuse however genuine the signature.
//   carol     groups [tollgate-admins], her ID token signed with a second key that the
//             provider starts publishing only then: a key rotation, which a relying party
//             that cached the first key set must catch up with.
import http from "node:http";
import { Provider } from "oidc-provider";
import { generateKeyPair, exportJWK, SignJWT, decodeJwt } from "jose";

const redirect = process.env.OIDC_REDIRECT_URI;
const secret = process.env.OIDC_CLIENT_SECRET;
if (!redirect || !secret) {
  console.error("OIDC_REDIRECT_URI and OIDC_CLIENT_SECRET are required");
  process.exit(2);
}

const accounts = {
  alice: { email: "alice@example.test", groups: ["tollgate-admins"] },
  victor: { email: "victor@example.test", groups: ["tollgate-viewers"] },
  nobody: { email: "nobody@example.test", groups: ["guests"] },
  stranger: { email: "stranger@example.test", groups: ["tollgate-admins"] },
  carol: { email: "carol@example.test", groups: ["tollgate-admins"] },
};

const { privateKey } = await generateKeyPair("RS256", { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: "test-key-1", alg: "RS256", use: "sig" };
const second = await generateKeyPair("RS256");
const rotatedJwk = { ...(await exportJWK(second.publicKey)), kid: "test-key-2", alg: "RS256", use: "sig" };
let rotated = false;

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const issuer = `http://localhost:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: "tollgate",
        client_secret: secret,
        redirect_uris: [redirect],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: ["tollgate test provider cookies"] },
    claims: { openid: ["sub"], email: ["email", "email_verified"], groups: ["groups"] },
    scopes: ["openid", "email", "groups"],
    // The claims asked for by scope go into the ID token, where Tollgate reads them.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      const account = accounts[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: account.email, email_verified: true, groups: account.groups };
        },
      };
    },
  });
  // The stranger's ID token, once the provider has made it, is made out to another client;
  // carol's is signed with the second key, published from then on.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === "/token" && ctx.body && typeof ctx.body.id_token === "string") {
      const claims = decodeJwt(ctx.body.id_token);
      if (claims.sub === "stranger") {
        ctx.body = {
          ...ctx.body,
          id_token: await new SignJWT({ ...claims, aud: "another-client" })
            .setProtectedHeader({ alg: "RS256", kid: jwk.kid })
            .sign(privateKey),
        };
      } else if (claims.sub === "carol") {
        rotated = true;
        ctx.body = {
          ...ctx.body,
          id_token: await new SignJWT(claims)
            .setProtectedHeader({ alg: "RS256", kid: rotatedJwk.kid })
            .sign(second.privateKey),
        };
      }
    }
    if (ctx.path === "/jwks" && rotated) {
      const body = typeof ctx.body === "object" && !Buffer.isBuffer(ctx.body) ? ctx.body : JSON.parse(String(ctx.body));
      ctx.body = { keys: [...body.keys, rotatedJwk] };
    }
  });
  provider.on("server_error", (_ctx, err) => console.error("provider error:", err));
  server.on("request", provider.callback());
  console.log(`oidc provider listening on ${issuer}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));

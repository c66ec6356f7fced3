// whisk.system/utils/hosturl (as OpenWhisk's catalog): the URL that invokes an action (POST with
// a key), a web action (`web: true`, with an optional extension) or a trigger (`trigger: true`)
// of the caller's namespace, on this platform's API host.
function main(args) {
    const host = process.env.__OW_API_HOST;
    const ns = process.env.__OW_NAMESPACE;
    const web = args.web === true;
    const collection = args.trigger === true ? 'triggers' : 'actions';
    const base = web ? `${host}/api/v1/web/${ns}` : `${host}/api/v1/namespaces/${ns}/${collection}`;
    const path = typeof args.path === 'string' ? args.path : undefined;

    if (web && args.trigger) {
        return { error: 'triggers are not allowed for web actions.' };
    } else if (web && args.ext) {
        if (!['.html', '.http', '.json', '.svg', '.text'].includes(args.ext)) {
            return { error: 'extension for web action must be one of [".html", ".http", ".json", ".svg", ".text"].' };
        }
    } else if (args.trigger && path && path.indexOf('/') !== -1) {
        return { error: 'triggers are not allowed in packages.' };
    }

    if (path) {
        const p = web && path.indexOf('/') === -1 ? `default/${path}` : path;
        const ext = web ? (args.ext || '') : '';
        return { url: `${base}/${p}${ext}` };
    }
    return { url: base };
}

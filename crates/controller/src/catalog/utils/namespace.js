// whisk.system/utils/namespace (as OpenWhisk's catalog): the namespace of the key that invoked
// this action (the activation's namespace, `__OW_NAMESPACE`).
function main() {
    return { namespace: process.env.__OW_NAMESPACE };
}

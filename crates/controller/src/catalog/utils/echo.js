// whisk.system/utils/echo (as OpenWhisk's catalog): returns its input.
function main(params) {
    return params || {};
}

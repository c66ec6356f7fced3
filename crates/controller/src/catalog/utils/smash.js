// whisk.system/utils/smash (as OpenWhisk's catalog): nests every argument under the property
// named by `$fieldName`.
function main(args) {
    const parent = args.$fieldName;
    if (typeof parent !== 'string') {
        return { error: "Expected an argument '$fieldName' of type 'string'." };
    }
    delete args.$fieldName;
    const result = {};
    result[parent] = args;
    return result;
}

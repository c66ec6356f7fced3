// whisk.system/utils/split (as OpenWhisk's catalog): `payload` split at `separator` (default:
// line ends) into `lines`.
function main(msg) {
    var separator = msg.separator || /\r?\n/;
    var payload = msg.payload.toString();
    var lines = payload.split(separator);
    var retn = {lines: lines, payload: msg.payload};
    console.log('split: returning ' + JSON.stringify(retn));
    return retn;
}

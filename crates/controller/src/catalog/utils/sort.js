// whisk.system/utils/sort (as OpenWhisk's catalog): sorts `lines` (JavaScript's default order).
function main(msg) {
    var lines = msg.lines || [];
    console.log('sort input msg: ' + JSON.stringify(msg));
    console.log('sort before: ' + lines);
    lines.sort();
    console.log('sort after: ' + lines);
    return {lines: lines, length: lines.length};
}
